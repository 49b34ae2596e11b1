package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"net/netip"
	"os"

	"go.uber.org/goleak"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func activeOnly(c Config) Config  { c.DisablePassive, c.DisableSO = true, true; return c }
func passiveOnly(c Config) Config { c.DisableActive, c.DisableSO = true, true; return c }
func soOnly(c Config) Config      { c.DisableActive, c.DisablePassive = true, true; return c }

func TestActiveToPassive(t *testing.T) {
	for _, tc := range []struct {
		name         string
		roleA, roleB Role
	}{
		{"active side controls", RoleControlling, RoleControlled},
		{"passive side controls", RoleControlled, RoleControlling},
		{"roles by tie-breaker", RoleAuto, RoleAuto},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := mustConnect(t, activeOnly(baseConfig(tc.roleA)), passiveOnly(baseConfig(tc.roleB)))
			if x.Local().TCPType != candidate.Active || x.Remote().TCPType != candidate.Passive {
				t.Fatalf("A selected %v -> %v, want active -> passive", x.Local(), x.Remote())
			}
			if y.Local().TCPType != candidate.Passive || y.Remote().TCPType != candidate.Active {
				t.Fatalf("B selected %v -> %v, want passive <- active", y.Local(), y.Remote())
			}
			if x.Path() != "direct" {
				t.Fatalf("path %q", x.Path())
			}
			exchange(t, x, y, 1<<20)
		})
	}
}

func TestSimultaneousOpenOnly(t *testing.T) {
	x, y := mustConnect(t, soOnly(baseConfig(RoleAuto)), soOnly(baseConfig(RoleAuto)))
	for _, c := range []*Conn{x, y} {
		if c.Local().TCPType != candidate.SO || c.Remote().TCPType != candidate.SO {
			t.Fatalf("selected %v -> %v, want so <-> so", c.Local(), c.Remote())
		}
	}
	exchange(t, x, y, 1<<20)
}

func TestWrongPasswordFailsUnauthenticated(t *testing.T) {
	chA, chB := signalingtest.Pair()
	_, _, errA, errB := connectPair(t,
		activeOnly(baseConfig(RoleControlling)), passiveOnly(baseConfig(RoleControlled)),
		tamper{chA, wrongPassword}, tamper{chB, wrongPassword})
	for name, err := range map[string]error{"A": errA, "B": errB} {
		if !isFailed(err) {
			t.Fatalf("%s: want a FailedError, got %v", name, err)
		}
	}
	if !errors.Is(errA, ErrUnauthenticated) {
		t.Fatalf("A: want ErrUnauthenticated in %v", errA)
	}
}

// An attacker that reaches a passive port with a check signed with the
// wrong password, followed by application data, gets 401 and is cut off;
// none of its bytes reach the application and the agents still connect.
func TestUnauthenticatedConnectionCarriesNoData(t *testing.T) {
	chA, chB := signalingtest.Pair()
	attacked := make(chan struct{})
	b, err := New(passiveOnly(baseConfig(RoleControlled)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(activeOnly(baseConfig(RoleControlling)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	// A's view of B's candidates goes through the attacker first.
	watch := tamper{chA, func(m *signaling.Message) {
		if m.Type != signaling.TypeCandidate {
			return
		}
		c, err := candidate.Parse(m.Candidate)
		if err != nil || c.TCPType != candidate.Passive {
			return
		}
		ufrag, _ := b.Credentials()
		attack(t, c.Addr.String(), ufrag)
		close(attacked)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rb := connectLater(ctx, b, chB)
	x, err := a.Connect(ctx, watch)
	if err != nil {
		t.Fatal(err)
	}
	<-attacked
	y := <-rb
	if y.err != nil {
		t.Fatal(y.err)
	}
	defer chA.Close()
	defer chB.Close()
	exchange(t, x, y.conn, 256<<10) // any attacker byte would break the hash
}

func TestPeerVanishesMidCheck(t *testing.T) {
	// The "peer" accepts TCP connections on its passive candidate and drops
	// each one as soon as the first bytes arrive.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Read(make([]byte, 1))
			c.Close()
		}
	}()
	chA, chB := signalingtest.Pair()
	defer chA.Close()
	defer chB.Close()
	cfg := activeOnly(baseConfig(RoleControlling))
	cfg.CheckTimeout = time.Second
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	chB.Send(ctx, signaling.Message{Type: signaling.TypeCredentials, Ufrag: "peerufrag", Pwd: "0123456789abcdefghijklmnop"})
	cand := candidate.New(candidate.Host, candidate.Passive, l.Addr().(*net.TCPAddr).AddrPort(), netip.AddrPort{}, netip.Addr{}, 8191)
	chB.Send(ctx, signaling.Message{Type: signaling.TypeCandidate, Candidate: cand.Marshal()})
	chB.Send(ctx, signaling.Message{Type: signaling.TypeEndOfCandidates})
	_, err = a.Connect(ctx, chA)
	if !isFailed(err) || !errors.Is(err, errConnLost) {
		t.Fatalf("want a FailedError naming the lost connection, got %v", err)
	}
}

func TestConnectCancelled(t *testing.T) {
	chA, chB := signalingtest.Pair()
	defer chA.Close()
	defer chB.Close()
	a, err := New(baseConfig(RoleAuto))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := a.Connect(ctx, chA); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	if st := a.Stats().State; st != StateClosed {
		t.Fatalf("state after cancel: %v", st)
	}
}

func TestMalformedRemoteCandidateIsAWarning(t *testing.T) {
	warned := make(chan error, 4)
	cfg := baseConfig(RoleControlling)
	cfg.OnEvent = func(e Event) {
		if e.Type == EventWarning {
			warned <- e.Err
		}
	}
	chA, chB := signalingtest.Pair()
	// Sent before B's agent starts, so A reads it before anything else.
	bad := "candidate:1 1 TCP notanumber 127.0.0.1 9 typ host tcptype active"
	if err := chB.Send(context.Background(), signaling.Message{Type: signaling.TypeCandidate, Candidate: bad}); err != nil {
		t.Fatal(err)
	}
	x, y, errA, errB := connectPair(t, cfg, baseConfig(RoleControlled), chA, chB)
	if errA != nil || errB != nil {
		t.Fatalf("connect: %v / %v", errA, errB)
	}
	select {
	case err := <-warned:
		var pe *candidate.ParseError
		if !errors.As(err, &pe) || pe.Field != "priority" {
			t.Fatalf("warning %v does not name the priority field", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no warning for a malformed candidate")
	}
	exchange(t, x, y, 1024)
}

func TestCloseReadsEOFAndStats(t *testing.T) {
	x, y := mustConnect(t, baseConfig(RoleAuto), baseConfig(RoleAuto))
	if _, err := x.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(y, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q %v", buf, err)
	}
	st := x.Agent().Stats()
	if st.Selected == nil || st.Selected.BytesSent != 5 || st.State != StateConnected {
		t.Fatalf("stats: %+v", st.Selected)
	}
	y.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := y.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	y.SetReadDeadline(time.Time{})
	x.Close()
	if _, err := y.Read(buf); err != io.EOF {
		t.Fatalf("want EOF after the peer closed, got %v", err)
	}
	if _, err := x.Write([]byte("x")); err == nil {
		t.Fatal("write after close succeeded")
	}
}

// The controlling agent may write as soon as its Connect returns; the
// controlled agent must still select (its own check's response would sit
// behind that data) and then deliver all of it.
func TestDataRightAfterNomination(t *testing.T) {
	chA, chB := signalingtest.Pair()
	defer chA.Close()
	defer chB.Close()
	a, _ := New(activeOnly(baseConfig(RoleControlling)))
	b, _ := New(passiveOnly(baseConfig(RoleControlled)))
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rb := connectLater(ctx, b, chB)
	x, err := a.Connect(ctx, chA)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8 << 20
	wrote := make(chan error, 1)
	go func() { _, err := x.Write(make([]byte, n)); wrote <- err }()
	r := <-rb
	if r.err != nil {
		t.Fatalf("controlled side: %v", r.err)
	}
	if got, err := io.CopyN(io.Discard, r.conn, n); err != nil || got != n {
		t.Fatalf("read %d of %d: %v", got, n, err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

// The controlled side selects on USE-CANDIDATE and answers it on a
// goroutine of its own; an application that writes and half-closes at once
// must not let its FIN overtake that answer, or the controlling side never
// completes its nomination.
func TestCloseWriteRightAfterSelection(t *testing.T) {
	for i := range 30 {
		chA, chB := signalingtest.Pair()
		a, _ := New(activeOnly(baseConfig(RoleControlling)))
		b, _ := New(passiveOnly(baseConfig(RoleControlled)))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		done := make(chan error, 1)
		go func() {
			c, err := b.Connect(ctx, chB)
			if err == nil {
				_, err = c.Write([]byte{byte(i)})
				if err == nil {
					err = c.CloseWrite()
				}
			}
			done <- err
		}()
		x, err := a.Connect(ctx, chA)
		if err != nil {
			t.Fatalf("round %d: controlling side: %v", i, err)
		}
		got, err := io.ReadAll(x)
		if err != nil || len(got) != 1 || got[0] != byte(i) {
			t.Fatalf("round %d: read %v, %v", i, got, err)
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: controlled side: %v", i, err)
		}
		cancel()
		a.Close()
		b.Close()
		chA.Close()
		chB.Close()
	}
}
