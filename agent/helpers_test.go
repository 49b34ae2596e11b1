package agent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"

	"github.com/icetcp/icetcp/internal/framing"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

var loopback = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

// quietLogs keeps test output readable; set ICETCP_TEST_LOG=debug to see everything.
func testLogger() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelError
	if os.Getenv("ICETCP_TEST_LOG") == "debug" {
		f.DefaultLogLevel = logging.LogLevelDebug
	}
	return f
}

func baseConfig(role Role) Config {
	return Config{Role: role, Addrs: loopback, LoggerFactory: testLogger(), CheckTimeout: 3 * time.Second, ConnectTimeout: 15 * time.Second}
}

// connectPair runs Connect on two agents joined by ch (nil: an in-memory pair).
func connectPair(t testing.TB, ca, cb Config, chA, chB signaling.Channel) (*Conn, *Conn, error, error) {
	t.Helper()
	if chA == nil {
		chA, chB = signalingtest.Pair()
	}
	a, err := New(ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close(); chA.Close(); chB.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var connA, connB *Conn
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); connA, errA = a.Connect(ctx, chA) }()
	go func() { defer wg.Done(); connB, errB = b.Connect(ctx, chB) }()
	wg.Wait()
	return connA, connB, errA, errB
}

func mustConnect(t *testing.T, ca, cb Config) (*Conn, *Conn) {
	t.Helper()
	x, y, errA, errB := connectPair(t, ca, cb, nil, nil)
	if errA != nil || errB != nil {
		t.Fatalf("connect: A: %v; B: %v", errA, errB)
	}
	return x, y
}

// exchange sends n random bytes each way at once and compares SHA-256
// sums. Each side half-closes after its bytes and reads exactly n bytes,
// then, toward an icetcp peer (in-band end of stream), io.EOF; a standard
// peer cannot be told about a half-close.
func exchange(t testing.TB, x, y *Conn, n int) {
	t.Helper()
	type res struct {
		sum [32]byte
		err error
	}
	send := func(w *Conn, data []byte, done chan<- error) {
		_, err := w.Write(data)
		if err == nil {
			err = w.CloseWrite()
		}
		done <- err
	}
	recv := func(r *Conn, out chan<- res) {
		h := sha256.New()
		_, err := io.CopyN(h, r, int64(n))
		if err == nil && r.eos {
			if k, end := r.Read(make([]byte, 1)); end != io.EOF {
				err = fmt.Errorf("after %d bytes: %d more, %v; want io.EOF", n, k, end)
			}
		}
		var s [32]byte
		copy(s[:], h.Sum(nil))
		out <- res{s, err}
	}
	dx, dy := make([]byte, n), make([]byte, n)
	rand.Read(dx)
	rand.Read(dy)
	sent := make(chan error, 2)
	go send(x, dx, sent)
	go send(y, dy, sent)
	gotX, gotY := make(chan res, 1), make(chan res, 1)
	go recv(x, gotX)
	go recv(y, gotY)
	for range 2 {
		if err := <-sent; err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	rx, ry := <-gotX, <-gotY
	if rx.err != nil || ry.err != nil {
		t.Fatalf("receive: %v / %v", rx.err, ry.err)
	}
	if rx.sum != sha256.Sum256(dy) {
		t.Fatal("A received different bytes than B sent")
	}
	if ry.sum != sha256.Sum256(dx) {
		t.Fatal("B received different bytes than A sent")
	}
}

// connectLater runs Connect on a goroutine and delivers its result.
func connectLater(ctx context.Context, a *Agent, ch signaling.Channel) <-chan connectResult {
	r := make(chan connectResult, 1)
	go func() { c, err := a.Connect(ctx, ch); r <- connectResult{c, err} }()
	return r
}

// tamper wraps a channel and rewrites messages it receives.
type tamper struct {
	signaling.Channel
	f func(*signaling.Message)
}

func (t tamper) Recv(ctx context.Context) (signaling.Message, error) {
	m, err := t.Channel.Recv(ctx)
	if err == nil {
		t.f(&m)
	}
	return m, err
}

func wrongPassword(m *signaling.Message) {
	if m.Type == signaling.TypeCredentials {
		m.Pwd = strings.Repeat("x", len(m.Pwd))
	}
}

func isFailed(err error) bool {
	var fe *FailedError
	return errors.As(err, &fe)
}

// attack connects to a passive candidate as someone who knows the ufrag
// but not the password: a check signed with a wrong key, then application
// data. It requires a 401 answer and the connection closed.
func attack(t *testing.T, addr, ufrag string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Errorf("attacker dial: %v", err)
		return
	}
	defer c.Close()
	m, err := buildRequest(checkParams{localUfrag: "evil", remoteUfrag: ufrag, remotePwd: "not-the-password-at-all", priority: 1, tiebreaker: 1}, [12]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	w := framing.NewWriter(c)
	w.WriteFrame(m.Raw)
	w.WriteFrame([]byte("attacker data that must never be delivered"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	fr := framing.NewReader(c)
	frame, err := fr.Next()
	if err != nil {
		t.Errorf("attacker: no answer: %v", err)
		return
	}
	resp := &stun.Message{Raw: frame}
	if err := resp.Decode(); err != nil || resp.Type.Class != stun.ClassErrorResponse || errorCode(resp) != stun.CodeUnauthorized {
		t.Errorf("attacker: want 401, got %v (%v)", resp, err)
	}
	if _, err := fr.Next(); err == nil {
		t.Error("attacker: connection still open after a rejected check")
	}
}
