package secure

import (
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/rendezvous"
	"github.com/icetcp/icetcp/signaling/signalingtest"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

func mustCode(t testing.TB, s string) Code {
	t.Helper()
	c, err := ParseCode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodeWords(t *testing.T) {
	words := codeWordList()
	if len(words) != 2848 {
		t.Fatalf("%d code words, want 2848", len(words))
	}
	for i, w := range words {
		if len(w) < 3 || len(w) > 6 || strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") != "" || (i > 0 && words[i-1] >= w) {
			t.Fatalf("word %d %q: want 3-6 letters, sorted, unique", i, w)
		}
	}
}

func TestParseCode(t *testing.T) {
	for i := range 50 {
		c := NewCode()
		got, err := ParseCode(c.String())
		if err != nil || got != c {
			t.Fatalf("%d: ParseCode(%q) = %v, %v", i, c, got, err)
		}
	}
	c := mustCode(t, "7-acid-canal-ozone")
	for _, typed := range []string{" 7 Acid canal.OZONE ", "007-acid-canal-ozone", "7--acid-canal-ozone"} {
		if got, err := ParseCode(typed); err != nil || got != c {
			t.Errorf("ParseCode(%q) = %v, %v; want %v", typed, got, err, c)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "0 parts"},
		{"7-acid-canal", "3 parts"},
		{"0-acid-canal-ozone", "not a number from 1 to 999"},
		{"1000-acid-canal-ozone", "not a number from 1 to 999"},
		{"x-acid-canal-ozone", "not a number"},
		{"7-acid-canl-ozone", `word 2 "canl" is not a code word (did you mean "canal"?)`},
		{"7-acid-canal-zzzzzzzzz", `word 3 "zzzzzzzzz" is not a code word`},
		{strings.Repeat("7-", 100), "bytes"},
	} {
		_, err := ParseCode(tc.in)
		if !errors.Is(err, ErrInvalidCode) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCode(%q): %v, want ErrInvalidCode saying %q", tc.in, err, tc.want)
		}
	}
}

// The room depends on the nameplate alone, the password on the whole
// code.
func TestCodeRoomAndPassword(t *testing.T) {
	a, b, c := mustCode(t, "7-acid-canal-ozone"), mustCode(t, "7-acid-zebra-mute"), mustCode(t, "8-acid-canal-ozone")
	if a.RoomName() != b.RoomName() || a.RoomName() == c.RoomName() {
		t.Errorf("rooms: %s %s %s: the first two share a nameplate, the third does not", a.RoomName(), b.RoomName(), c.RoomName())
	}
	if string(a.password()) == string(b.password()) {
		t.Error("two codes of one nameplate share a password")
	}
	if !signaling.ValidRoom(a.RoomName()) {
		t.Errorf("room %q is not a valid room name", a.RoomName())
	}
}

// exchangeBoth runs ExchangeCode on both ends at once.
func exchangeBoth(ctx context.Context, a, b signaling.Channel, ca, cb Code) (sa, sb Secret, errA, errB error) {
	type res struct {
		s   Secret
		err error
	}
	done := make(chan res, 1)
	go func() {
		s, err := ExchangeCode(ctx, b, cb, CodeTaker)
		done <- res{s, err}
	}()
	sa, errA = ExchangeCode(ctx, a, ca, CodeMaker)
	r := <-done
	return sa, r.s, errA, r.err
}

func TestExchangeCode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := NewCode()

	a, b := signalingtest.Pair()
	sa, sb, errA, errB := exchangeBoth(ctx, a, b, code, code)
	a.Close()
	b.Close()
	if errA != nil || errB != nil {
		t.Fatalf("same code: %v, %v", errA, errB)
	}
	if sa.data != sb.data || len(sa.data) != 32 || sa.String() != "" {
		t.Fatalf("keys differ or have the wrong form")
	}
	// The key keys the stream.
	x, y := net.Pipe()
	done := make(chan error, 1)
	go func() {
		c, err := Server(ctx, y, sb, Config{})
		if err == nil {
			_, err = c.Write([]byte("ok"))
			c.CloseWrite()
			c.Close()
		}
		done <- err
	}()
	c, err := Client(ctx, x, sa, Config{})
	if err != nil {
		t.Fatalf("handshake with the exchanged key: %v", err)
	}
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "ok" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Another code with the same nameplate (a typo in a later word, or a
	// guess): both sides refuse.
	other := code
	other.words[2] = codeWordList()[0]
	if other.words[2] == code.words[2] {
		other.words[2] = codeWordList()[1]
	}
	a, b = signalingtest.Pair()
	_, _, errA, errB = exchangeBoth(ctx, a, b, code, other)
	a.Close()
	b.Close()
	if !errors.Is(errA, ErrUnconfirmed) || !errors.Is(errB, ErrUnconfirmed) {
		t.Fatalf("different codes: %v, %v; want ErrUnconfirmed on both sides", errA, errB)
	}

	// Two makers of one code.
	a, b = signalingtest.Pair()
	done2 := make(chan error, 1)
	go func() {
		_, err := ExchangeCode(ctx, b, code, CodeMaker)
		done2 <- err
	}()
	_, errA = ExchangeCode(ctx, a, code, CodeMaker)
	errB = <-done2 // before the channel closes under it
	a.Close()
	b.Close()
	if !errors.Is(errA, ErrUnconfirmed) || !errors.Is(errB, ErrUnconfirmed) || !strings.Contains(errA.Error(), "two senders") {
		t.Fatalf("two makers: %v, %v", errA, errB)
	}

	// A peer with a secret instead of a code.
	a, b = signalingtest.Pair()
	go func() { done2 <- ConfirmPeer(ctx, b, testSecret(t), nil) }()
	_, errA = ExchangeCode(ctx, a, code, CodeMaker)
	a.Close()
	b.Close()
	<-done2
	if !errors.Is(errA, ErrUnconfirmed) || !strings.Contains(errA.Error(), "--secret") {
		t.Fatalf("a secret's peer: %v", errA)
	}
}

// Key shares that are not points on the curve end the exchange with an
// error, never a panic inside the PAKE library.
func TestExchangeCodeRefusesBadShares(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := NewCode()
	g := encodePoint(elliptic.P256().Params().Gx, elliptic.P256().Params().Gy)
	offCurve := append([]byte(nil), g...)
	offCurve[64] ^= 1
	for name, msg := range map[string]string{
		"off the curve": base64.RawURLEncoding.EncodeToString(offCurve),
		"infinity":      base64.RawURLEncoding.EncodeToString(make([]byte, p256PointLen)),
		"short":         base64.RawURLEncoding.EncodeToString(g[:33]),
		"compressed":    base64.RawURLEncoding.EncodeToString(append([]byte{2}, g[1:33]...)),
	} {
		a, b := signalingtest.Pair()
		if err := b.Send(ctx, signaling.Message{Type: signaling.TypePake, Pake: &signaling.Pake{From: signaling.PakeMaker, Msg: msg}}); err != nil {
			t.Fatal(err)
		}
		_, err := ExchangeCode(ctx, a, code, CodeTaker)
		a.Close()
		b.Close()
		if !errors.Is(err, ErrUnconfirmed) {
			t.Errorf("%s: %v, want ErrUnconfirmed", name, err)
		}
	}
}

// On a real rendezvous, in the room of the code: the maker waits; a taker
// comes and leaves before its share (the maker sends a fresh one to the
// next); then the real taker, and both agree.
func TestExchangeCodeThroughARendezvous(t *testing.T) {
	srv := &rendezvous.Server{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := NewCode()
	d := &wsclient.Dialer{RoomKey: code.RoomKey()}
	maker, err := d.Dial(ctx, url, code.RoomName())
	if err != nil {
		t.Fatal(err)
	}
	defer maker.Close()
	type res struct {
		s   Secret
		err error
	}
	made := make(chan res, 1)
	go func() {
		s, err := ExchangeCode(ctx, maker, code, CodeMaker)
		made <- res{s, err}
	}()

	gone, err := d.Dial(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := gone.Recv(ctx); err != nil || m.Type != signaling.TypePake {
		t.Fatalf("the first taker got %+v, %v; want the maker's share", m, err)
	}
	gone.Close()

	var taker *wsclient.Client
	for {
		taker, err = d.Dial(ctx, url, "")
		if !errors.Is(err, signaling.ErrRoomFull) {
			break
		}
		// The rendezvous frees the place once it has seen the close: a
		// dial is a round trip, enough of a pace for the retry.
	}
	if err != nil {
		t.Fatal(err)
	}
	defer taker.Close()
	st, err := ExchangeCode(ctx, taker, code, CodeTaker)
	if err != nil {
		t.Fatalf("taker: %v", err)
	}
	r := <-made
	if r.err != nil || r.s.data != st.data {
		t.Fatalf("maker: %v (keys equal: %v)", r.err, r.s.data == st.data)
	}
}
