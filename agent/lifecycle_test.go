package agent

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/internal/lab/memnet"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

func TestConnectAfterCloseOpensNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		a, err := New(memConfig(n, ipA, RoleAuto))
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		chA, chB := signalingtest.Pair()
		defer chA.Close()
		defer chB.Close()
		if _, err := a.Connect(context.Background(), chA); !errors.Is(err, ErrClosed) {
			t.Fatalf("Connect after Close: %v, want ErrClosed", err)
		}
		if _, err := n.Listen(context.Background(), netip.AddrPortFrom(ipA, 40001), false); err != nil {
			t.Fatalf("the closed agent holds a port: %v", err)
		}
	})
}

// Connect and Close racing each other never leave an agent registered in
// the Mux (the registration used to happen after the loop could end).
func TestMuxRegistrationNeverOutlivesAgent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux, err := NewMux(l, MuxConfig{LoggerFactory: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	for range 200 {
		cfg := passiveOnly(baseConfig(RoleControlled))
		cfg.Mux = mux
		a, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		chA, chB := signalingtest.Pair()
		done := make(chan struct{})
		go func() { defer close(done); a.Connect(context.Background(), chA) }()
		runtime.Gosched()
		a.Close()
		<-done
		chA.Close()
		chB.Close()
	}
	if got := mux.Stats().Agents; got != 0 {
		t.Fatalf("%d closed agents still registered in the Mux", got)
	}
}

// No OnEvent call happens after Close returned.
func TestNoEventAfterClose(t *testing.T) {
	for range 50 {
		var closed atomic.Bool
		late := make(chan Event, 16)
		cfg := baseConfig(RoleAuto)
		cfg.OnEvent = func(e Event) {
			time.Sleep(time.Millisecond) // a slow callback keeps events queued
			if closed.Load() {
				late <- e
			}
		}
		a, _ := New(cfg)
		chA, chB := signalingtest.Pair()
		ctx, cancel := context.WithCancel(context.Background())
		go a.Connect(ctx, chA)
		runtime.Gosched()
		a.Close()
		closed.Store(true)
		cancel()
		chA.Close()
		chB.Close()
		select {
		case e := <-late:
			t.Fatalf("OnEvent(%v %v) called after Close returned", e.Type, e.State)
		default:
		}
	}
}

// A peer that floods punch pings gets a bounded number of pongs, and a slow
// OnEvent with a flood of bad candidates gets a bounded queue.
func TestPeerFloodsAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		cfg := memConfig(n, ipA, RoleControlled)
		release := make(chan struct{})
		var delivered atomic.Int64
		cfg.OnEvent = func(e Event) {
			<-release
			delivered.Add(1)
		}
		a, _ := New(cfg)
		defer a.Close()
		chA, chB := signalingtest.Pair()
		defer chA.Close()
		defer chB.Close()
		go a.Connect(context.Background(), chA)
		ctx := context.Background()
		chB.Send(ctx, signaling.Message{Type: signaling.TypeCredentials, Ufrag: "peerufrag", Pwd: "0123456789abcdefghijklmnop", Role: signaling.RoleControlling})
		for i := range 5000 {
			chB.Send(ctx, signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: uint32(i), Phase: signaling.PunchPing}})
			chB.Send(ctx, signaling.Message{Type: signaling.TypeCandidate, Candidate: "candidate:1 1 TCP bad 10.0.0.9 9 typ host tcptype active"})
		}
		synctest.Wait()
		pongs := 0
		for {
			rctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			m, err := chB.Recv(rctx)
			cancel()
			if err != nil {
				break
			}
			if m.Type == signaling.TypePunch && m.Punch.Phase == signaling.PunchPong {
				pongs++
			}
		}
		if pongs > maxPongs {
			t.Fatalf("%d pongs for 5000 pings, want at most %d", pongs, maxPongs)
		}
		a.events.mu.Lock()
		queued := len(a.events.q)
		a.events.mu.Unlock()
		if queued > maxQueuedWarnings+8 {
			t.Fatalf("%d events queued for a stuck OnEvent", queued)
		}
		close(release)
	})
}

// Close returns fast even when the signaling channel is stuck: the bye
// gets a short, bounded chance (virtual time).
func TestCloseIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		a, _ := New(memConfig(n, ipA, RoleAuto))
		stuck := &stuckChannel{recv: make(chan struct{})}
		go a.Connect(context.Background(), stuck)
		synctest.Wait()
		start := time.Now()
		a.Close()
		if d := time.Since(start); d > flushTimeout {
			t.Fatalf("Close took %v with a stuck signaling channel, bound %v", d, flushTimeout)
		}
		close(stuck.recv)
	})
}

// stuckChannel never delivers; Send blocks until ctx ends.
type stuckChannel struct{ recv chan struct{} }

func (s *stuckChannel) Send(ctx context.Context, m signaling.Message) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s *stuckChannel) Recv(ctx context.Context) (signaling.Message, error) {
	select {
	case <-ctx.Done():
		return signaling.Message{}, ctx.Err()
	case <-s.recv:
		return signaling.Message{}, signaling.ErrClosed
	}
}

func (s *stuckChannel) Close() error { return nil }

// 1,000 connect/close cycles in one process leave no goroutine and no file
// descriptor behind (real sockets).
func TestConnectCloseCyclesLeaveNothing(t *testing.T) {
	cycles := 1000
	if testing.Short() {
		cycles = 100
	}
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd on this system")
		}
		return len(ents)
	}
	runtime.GC()
	beforeFDs, beforeG := fds(), runtime.NumGoroutine()
	for i := range cycles {
		x, y, errA, errB := connectPairNoCleanup(activeOnly(baseConfig(RoleControlling)), passiveOnly(baseConfig(RoleControlled)))
		if errA != nil || errB != nil {
			t.Fatalf("cycle %d: %v / %v", i, errA, errB)
		}
		x.Close()
		y.Close()
	}
	deadline := time.Now().Add(5 * time.Second) // the kernel and runtime settle asynchronously
	for fds() > beforeFDs || runtime.NumGoroutine() > beforeG {
		if time.Now().After(deadline) {
			ents, _ := os.ReadDir("/proc/self/fd")
			var open []string
			tcp, _ := os.ReadFile("/proc/self/net/tcp")
			for _, e := range ents {
				l, _ := os.Readlink("/proc/self/fd/" + e.Name())
				if strings.HasPrefix(l, "socket:[") {
					ino := strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")
					for _, line := range strings.Split(string(tcp), "\n") {
						if f := strings.Fields(line); len(f) > 9 && f[9] == ino {
							l += " " + f[1] + "->" + f[2] + " st=" + f[3]
						}
					}
				}
				open = append(open, l)
			}
			t.Fatalf("after %d cycles: %d fds (was %d), %d goroutines (was %d); open: %v", cycles, fds(), beforeFDs, runtime.NumGoroutine(), beforeG, open)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func connectPairNoCleanup(ca, cb Config) (*Conn, *Conn, error, error) {
	chA, chB := signalingtest.Pair()
	defer chA.Close()
	defer chB.Close()
	a, _ := New(ca)
	b, _ := New(cb)
	var wg sync.WaitGroup
	var x, y *Conn
	var errA, errB error
	wg.Add(2)
	go func() { defer wg.Done(); x, errA = a.Connect(context.Background(), chA) }()
	go func() { defer wg.Done(); y, errB = b.Connect(context.Background(), chB) }()
	wg.Wait()
	if errA != nil || errB != nil {
		a.Close()
		b.Close()
	}
	return x, y, errA, errB
}

func TestStringsOutOfRange(t *testing.T) {
	for _, s := range []string{State(99).String(), State(-1).String(), EventType(7).String(), pairState(9).String()} {
		if s == "" {
			t.Fatal("empty name")
		}
	}
}

func TestInterleaveFamilies(t *testing.T) {
	in := []netip.Addr{
		netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3"),
		netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"),
	}
	got := interleave(in)
	want := []string{"2001:db8::1", "10.0.0.1", "2001:db8::2", "10.0.0.2", "10.0.0.3"}
	for i, w := range want {
		if got[i].String() != w {
			t.Fatalf("interleave: %v, want %v", got, want)
		}
	}
}

// Every candidate type works over IPv6 (loopback ::1).
func TestIPv6AllTypes(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		l.Close()
	}
	v6 := func(c Config) Config { c.Addrs = []netip.Addr{netip.IPv6Loopback()}; return c }
	for _, tc := range []struct {
		name   string
		ca, cb Config
	}{
		{"active-passive", activeOnly(v6(baseConfig(RoleControlling))), passiveOnly(v6(baseConfig(RoleControlled)))},
		{"so", soOnly(v6(baseConfig(RoleAuto))), soOnly(v6(baseConfig(RoleAuto)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, y := mustConnect(t, tc.ca, tc.cb)
			if !x.Local().Addr.Addr().Is6() || !x.Remote().Addr.Addr().Is6() {
				t.Fatalf("selected %v -> %v, not IPv6", x.Local(), x.Remote())
			}
			exchange(t, x, y, 64<<10)
		})
	}
}
