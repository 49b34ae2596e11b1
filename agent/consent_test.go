package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// blackhole is a TCP relay that can start dropping everything while
// keeping both connections open: a path that silently dies.
type blackhole struct {
	l      net.Listener
	target string
	drop   atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newBlackhole(t *testing.T, target string) *blackhole {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{l: l, target: target}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			b.mu.Lock()
			b.conns = append(b.conns, c, d)
			b.mu.Unlock()
			b.wg.Add(2)
			go b.pipe(c, d)
			go b.pipe(d, c)
		}
	}()
	return b
}

func (b *blackhole) pipe(dst, src net.Conn) {
	defer b.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if !b.drop.Load() {
			dst.Write(buf[:n])
		}
	}
}

func (b *blackhole) Close() {
	b.l.Close()
	b.mu.Lock()
	for _, c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func TestConsentExpires(t *testing.T) {
	chA, chB := signalingtest.Pair()
	var hole *blackhole
	defer func() {
		if hole != nil {
			hole.Close()
		}
	}()
	// A learns B's passive candidate as the black hole's address.
	redirect := tamper{chA, func(m *signaling.Message) {
		if m.Type != signaling.TypeCandidate {
			return
		}
		c, err := candidate.Parse(m.Candidate)
		if err != nil || c.TCPType != candidate.Passive {
			return
		}
		hole = newBlackhole(t, c.Addr.String())
		c.Addr = addrPortOf(hole.l.Addr())
		c.Related = netip.AddrPort{}
		m.Candidate = c.Marshal()
	}}
	short := func(c Config) Config {
		c.ConsentInterval, c.ConsentTimeout = 100*time.Millisecond, time.Second
		return c
	}
	x, y, errA, errB := connectPair(t, short(activeOnly(baseConfig(RoleControlling))), short(passiveOnly(baseConfig(RoleControlled))), redirect, chB)
	if errA != nil || errB != nil {
		t.Fatalf("connect: %v / %v", errA, errB)
	}
	exchange2 := func() {
		x.Write([]byte("ping"))
		buf := make([]byte, 4)
		y.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(y, buf); err != nil {
			t.Fatal(err)
		}
	}
	exchange2()
	time.Sleep(1500 * time.Millisecond) // consent is refreshed while the path works
	exchange2()
	hole.drop.Store(true)
	for _, c := range []*Conn{x, y} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, ErrConsentExpired) {
			t.Fatalf("want ErrConsentExpired, got %v", err)
		}
		if st := c.Agent().Stats().State; st != StateFailed {
			t.Fatalf("state %v after consent loss", st)
		}
	}
}

// After one side's CloseWrite the other keeps sending for longer than the
// consent interval: consent checks already in flight towards the
// half-closed side must neither break its connection nor the peer's.
func TestHalfCloseOutlivesConsent(t *testing.T) {
	fast := func(c Config) Config {
		c.ConsentInterval, c.ConsentTimeout = 50*time.Millisecond, 2*time.Second
		return c
	}
	x, y := mustConnect(t, fast(baseConfig(RoleControlling)), fast(baseConfig(RoleControlled)))
	if _, err := x.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	if err := x.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(y)
	if err != nil || string(got) != "bye" {
		t.Fatalf("y read %q, %v", got, err)
	}
	// y keeps talking for many consent intervals
	sent := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		n, err := y.Write(make([]byte, 1024))
		if err != nil {
			t.Fatalf("y write after x's half-close: %v", err)
		}
		sent += n
		time.Sleep(10 * time.Millisecond)
	}
	y.CloseWrite()
	x.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, x)
	if err != nil || int(n) != sent {
		t.Fatalf("x read %d of %d: %v", n, sent, err)
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
