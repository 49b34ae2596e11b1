package secure

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/rendezvous"
	"github.com/icetcp/icetcp/signaling/signalingtest"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// confirmBoth runs ConfirmPeer on both ends at once.
func confirmBoth(ctx context.Context, a, b signaling.Channel, sa, sb Secret) (errA, errB error) {
	done := make(chan error, 1)
	go func() { done <- ConfirmPeer(ctx, b, sb, nil) }()
	errA = ConfirmPeer(ctx, a, sa, nil)
	return errA, <-done
}

func TestConfirmPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s := testSecret(t)

		// The same secret: both confirmed, and what follows is the agent's.
		a, b := signalingtest.Pair()
		if errA, errB := confirmBoth(ctx, a, b, s, s); errA != nil || errB != nil {
			t.Fatalf("same secret: %v, %v", errA, errB)
		}
		creds := signaling.Message{Type: signaling.TypeCredentials, Ufrag: "abcd", Pwd: strings.Repeat("p", 22)}
		if err := a.Send(ctx, creds); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := b.Recv(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Type == signaling.TypeCredentials {
				break
			}
			if m.Type != signaling.TypeConfirm {
				t.Fatalf("after the confirmation: %+v", m)
			}
		}
		a.Close()
		b.Close()

		// Another secret: both refuse.
		a, b = signalingtest.Pair()
		errA, errB := confirmBoth(ctx, a, b, s, NewSecret())
		if !errors.Is(errA, ErrUnconfirmed) || !errors.Is(errB, ErrUnconfirmed) {
			t.Fatalf("different secrets: %v, %v; want ErrUnconfirmed on both sides", errA, errB)
		}
		a.Close()
		b.Close()

		// A peer that skips the confirmation.
		a, b = signalingtest.Pair()
		b.Send(ctx, creds)
		if err := ConfirmPeer(ctx, a, s, nil); !errors.Is(err, ErrUnconfirmed) {
			t.Fatalf("credentials before a proof: %v, want ErrUnconfirmed", err)
		}
		a.Close()
		b.Close()
	})
}

// A peer that only sends back what it gets (our nonce, then our proof)
// proves nothing.
func TestConfirmPeerRefusesReflection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, mirror := signalingtest.Pair()
		go func() {
			for {
				m, err := mirror.Recv(ctx)
				if err != nil {
					return
				}
				mirror.Send(ctx, m)
			}
		}()
		if err := ConfirmPeer(ctx, a, testSecret(t), nil); !errors.Is(err, ErrUnconfirmed) {
			t.Fatalf("a mirror: %v, want ErrUnconfirmed", err)
		}
		a.Close()
		mirror.Close()
	})
}

// A confirmation recorded between the real peers, played to one of them
// later (by the rendezvous, or anyone who watched ws://), proves nothing:
// its proof answers a nonce of another session. The replayer gets nowhere
// and the real peer waits until its deadline.
func TestConfirmPeerRefusesReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s := testSecret(t)
		a, b := signalingtest.Pair()
		rec := &recorder{Channel: b}
		if errA, errB := confirmBoth(ctx, a, rec, s, s); errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		a.Close()
		b.Close()

		victim, replayer := signalingtest.Pair()
		for _, m := range rec.sent {
			replayer.Send(ctx, m)
		}
		short, cancelShort := context.WithTimeout(ctx, 20*time.Second)
		defer cancelShort()
		if err := ConfirmPeer(short, victim, s, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a replayed confirmation: %v, want the victim still waiting at its deadline", err)
		}
		victim.Close()
		replayer.Close()
	})
}

// recorder keeps what one side sent.
type recorder struct {
	signaling.Channel
	sent []signaling.Message
}

func (r *recorder) Send(ctx context.Context, m signaling.Message) error {
	r.sent = append(r.sent, m)
	return r.Channel.Send(ctx, m)
}

// On a real rendezvous: the first peer waits in the room of the secret;
// another holder joins, sends its nonce and leaves before it proves
// anything (the rendezvous queued the first peer's messages for it, and
// now holds them for the next); a third one comes, and the first two
// confirm each other. Stale messages for the one who left prove nothing
// and stop nothing.
func TestConfirmPeerThroughARendezvous(t *testing.T) {
	srv := &rendezvous.Server{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testSecret(t)
	d := &wsclient.Dialer{RoomKey: RoomKey(s)}

	first, err := d.Dial(ctx, url, RoomName(s))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	confirmed := make(chan error, 1)
	go func() { confirmed <- ConfirmPeer(ctx, first, s, nil) }()

	gone, err := d.Dial(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.Send(ctx, signaling.Message{Type: signaling.TypeConfirm, Confirm: &signaling.Confirm{Nonce: b64(make([]byte, confirmNonceLen))}}); err != nil {
		t.Fatal(err)
	}
	// Wait for the first peer's answer to it, then leave.
	for {
		m, err := gone.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == signaling.TypeConfirm && m.Confirm.MAC != "" {
			break
		}
	}
	gone.Close()

	// The rendezvous frees the place once it has seen the close: until
	// then the room is full, and a peer tries again, as connect does.
	var second *wsclient.Client
	for {
		second, err = d.Dial(ctx, url, "")
		if !errors.Is(err, signaling.ErrRoomFull) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := ConfirmPeer(ctx, second, s, nil); err != nil {
		t.Fatalf("the second peer: %v", err)
	}
	if err := <-confirmed; err != nil {
		t.Fatalf("the first peer: %v", err)
	}
}

// discardChannel takes every Send.
type discardChannel struct{ signaling.Channel }

func (discardChannel) Send(context.Context, signaling.Message) error { return nil }

// FuzzConfirm: whatever confirm values arrive, a confirmer neither panics
// nor counts the peer confirmed without a MAC made with the key over a
// nonce of its own.
func FuzzConfirm(f *testing.F) {
	s := testSecret(f)
	k := confirmer{key: s.derive(kdfConfirmInfo, 32), mine: [][]byte{make([]byte, confirmNonceLen)}}
	peer := confirmer{key: k.key}
	theirs := []byte("0123456789abcdef")
	f.Add(b64(theirs), b64(k.mine[0]), b64(peer.mac(theirs, k.mine[0])))
	f.Add(b64(theirs), "", "")
	f.Add("", "x", "y")
	f.Fuzz(func(t *testing.T, nonce, to, mac string) {
		k := confirmer{key: k.key, mine: [][]byte{make([]byte, confirmNonceLen)}}
		done, err := k.take(context.Background(), discardChannel{}, &signaling.Confirm{Nonce: nonce, To: to, MAC: mac})
		if err != nil && !errors.Is(err, ErrUnconfirmed) {
			t.Fatalf("take: %v, want ErrUnconfirmed", err)
		}
		if done {
			n, _ := decodeConfirm(nonce, confirmNonceLen)
			if to != b64(k.mine[0]) || mac != b64(peer.mac(n, k.mine[0])) {
				t.Fatalf("confirmed by %q %q %q", nonce, to, mac)
			}
		}
	})
}
