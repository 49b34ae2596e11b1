package agent

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// Traps a library user met (issue 17): each test fails on the code before
// the fix it names.

// A peer that never comes is told apart from checks that failed: Connect
// used to return the bare context error in both cases.
func TestConnectNoPeerIsErrNoPeer(t *testing.T) {
	chA, chB := signalingtest.Pair()
	defer chA.Close()
	defer chB.Close()
	a, err := New(baseConfig(RoleAuto))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = a.Connect(ctx, chA)
	var fe *FailedError
	if !errors.Is(err, ErrNoPeer) || !errors.As(err, &fe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect without a peer: %v, want a *FailedError matching ErrNoPeer and context.DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "no peer") {
		t.Errorf("message %q does not say that no peer joined", err)
	}
}

// A peer whose credentials came but whose candidates cannot be reached is
// a failure of the checks, not ErrNoPeer.
func TestConnectPeerWithoutPathIsNotErrNoPeer(t *testing.T) {
	chA, chB := signalingtest.Pair()
	defer chA.Close()
	defer chB.Close()
	a, err := New(baseConfig(RoleControlling))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	chB.Send(ctx, signaling.Message{Type: signaling.TypeCredentials, Ufrag: "peerufrag", Pwd: "0123456789abcdefghijklmnop"})
	ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = a.Connect(ctx, chA)
	var fe *FailedError
	if errors.Is(err, ErrNoPeer) || !errors.As(err, &fe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect with a silent peer: %v, want a *FailedError matching context.DeadlineExceeded and not ErrNoPeer", err)
	}
}

// New refuses what gathering would only have warned about.
func TestNewRejectsMalformedServers(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"turn scheme", Config{TURNServers: []TURNServer{{URI: "turn://relay.example:3478", Username: "u", Password: "p"}}}, "TURNServers[0]"},
		{"turn port", Config{TURNServers: []TURNServer{{URI: "turn:relay.example:99999", Username: "u", Password: "p"}}}, "TURNServers[0]"},
		{"turn udp", Config{TURNServers: []TURNServer{{URI: "turn:relay.example?transport=udp", Username: "u", Password: "p"}}}, "transport=udp"},
		{"stun no port", Config{STUNServers: []string{"stun.example"}}, "STUNServers[0]"},
		{"stun empty host", Config{STUNServers: []string{":3478"}}, "STUNServers[0]"},
	} {
		a, err := New(tc.cfg)
		if err == nil {
			a.Close()
			t.Errorf("%s: New accepted %+v", tc.name, tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "agent: config: ") {
			t.Errorf("%s: %v, want an agent: config: error naming %q", tc.name, err, tc.want)
		}
	}
	a, err := New(Config{Addrs: loopback, STUNServers: []string{"stun.example:3478"}, TURNServers: []TURNServer{{URI: "turns:relay.example", Username: "u", Password: "p"}}})
	if err != nil {
		t.Fatalf("valid servers refused: %v", err)
	}
	a.Close()
}

// heldCredentials is a Channel that holds the peer's credentials back
// until release is closed: the peer's checks overtake them, as on a fast
// LAN where the rendezvous is the slow path.
type heldCredentials struct {
	signaling.Channel
	release <-chan struct{}
	held    []signaling.Message
}

func (h *heldCredentials) Recv(ctx context.Context) (signaling.Message, error) {
	for {
		select {
		case <-h.release:
			if len(h.held) > 0 {
				m := h.held[0]
				h.held = h.held[1:]
				return m, nil
			}
		default:
		}
		m, err := h.recvOrRelease(ctx)
		if err != nil || m.Type != signaling.TypeCredentials {
			return m, err
		}
		select {
		case <-h.release:
			return m, nil
		default:
			h.held = append(h.held, m)
		}
	}
}

// recvOrRelease waits for a message, or returns a zero message when the
// hold is released with something held.
func (h *heldCredentials) recvOrRelease(ctx context.Context) (signaling.Message, error) {
	if len(h.held) == 0 {
		return h.Channel.Recv(ctx)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan struct{})
	var m signaling.Message
	var err error
	go func() { defer close(got); m, err = h.Channel.Recv(rctx) }()
	select {
	case <-got:
		return m, err
	case <-h.release:
		cancel()
		<-got
		if err == nil {
			// A message raced the release: deliver it after the held one.
			h.held = append(h.held, m)
		}
		m = h.held[0]
		h.held = h.held[1:]
		return m, nil
	}
}

// ConnectTime counts from the peer's first check when it came before the
// peer's credentials: the controlled side used to report 0 when it
// selected the committed pair at the arrival of the credentials.
func TestConnectTimeWhenTheCheckOvertakesTheCredentials(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	cb := baseConfig(RoleControlled)
	cb.Tracer = TracerFunc(func(e TraceEvent) {
		if e.Kind == TraceNominated {
			once.Do(func() { close(release) }) // committed before the credentials came
		}
	})
	chA, chB := signalingtest.Pair()
	x, y, errA, errB := connectPair(t, baseConfig(RoleControlling), cb, chA, &heldCredentials{Channel: chB, release: release})
	if errA != nil || errB != nil {
		t.Fatalf("connect: A: %v; B: %v", errA, errB)
	}
	select {
	case <-release:
	default:
		t.Fatal("B selected without committing before the credentials: the test did not set up the overtaking check")
	}
	if x.ConnectTime() <= 0 || y.ConnectTime() <= 0 {
		t.Errorf("ConnectTime: controlling %v, controlled %v; both must be positive", x.ConnectTime(), y.ConnectTime())
	}
}
