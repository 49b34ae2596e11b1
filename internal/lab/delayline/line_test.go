package delayline

import (
	"math"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

func twoLinks(t *testing.T, cfg Config, la, lb LinkConfig) (*Line, *memLink, *memLink) {
	t.Helper()
	l := New(cfg)
	a, b := newMemLink(1<<14), newMemLink(1<<14)
	if err := l.AddLink("a", a, pfx("203.0.113.1/32"), la); err != nil {
		t.Fatal(err)
	}
	if err := l.AddLink("b", b, pfx("198.51.100.0/24"), lb); err != nil {
		t.Fatal(err)
	}
	l.Start()
	t.Cleanup(func() { l.Close() })
	return l, a, b
}

func TestRouting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(Config{})
		a, b, c := newMemLink(16), newMemLink(16), newMemLink(16)
		must(t, l.AddLink("a", a, pfx("203.0.113.1/32"), LinkConfig{}))
		must(t, l.AddLink("b", b, pfx("198.51.100.0/24"), LinkConfig{}))
		// c claims one host out of b's /24: longest prefix wins.
		must(t, l.AddLink("c", c, pfx("198.51.100.11/32"), LinkConfig{}))
		if err := l.AddLink("a", newMemLink(1), nil, LinkConfig{}); err == nil {
			t.Error("duplicate link name accepted")
		}
		l.Start()
		if err := l.AddLink("d", newMemLink(1), nil, LinkConfig{}); err == nil {
			t.Error("AddLink after Start accepted")
		}

		a.fromHost <- ipv4("203.0.113.1", "198.51.100.10", 1, 100)
		a.fromHost <- ipv4("203.0.113.1", "198.51.100.11", 2, 100)
		a.fromHost <- ipv4("203.0.113.1", "192.0.2.1", 3, 100) // no route
		a.fromHost <- []byte{0x60, 0, 0, 0}                    // IPv6: invalid
		b.fromHost <- ipv4("198.51.100.10", "203.0.113.1", 4, 100)
		synctest.Wait()

		if got := drain(b); !slices.Equal(got, []uint32{1}) {
			t.Errorf("b got %v, want [1]", got)
		}
		if got := drain(c); !slices.Equal(got, []uint32{2}) {
			t.Errorf("c got %v, want [2]", got)
		}
		if got := drain(a); !slices.Equal(got, []uint32{4}) {
			t.Errorf("a got %v, want [4]", got)
		}
		s := l.Stats()
		if s.NoRoute != 1 || s.Invalid != 1 {
			t.Errorf("NoRoute=%d Invalid=%d, want 1 1", s.NoRoute, s.Invalid)
		}
		if s.Links[0].RxPackets != 4 || s.Links[1].TxPackets != 1 {
			t.Errorf("stats %+v", s.Links)
		}
		must(t, l.Close())
		must(t, l.Close()) // idempotent
	})
}

func TestDelayComposesIntoRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := twoLinks(t, Config{}, LinkConfig{Delay: 30 * time.Millisecond}, LinkConfig{Delay: 10 * time.Millisecond})
		start := time.Now()
		a.fromHost <- ipv4("203.0.113.1", "198.51.100.10", 1, 100)
		<-b.toHost // a→b: b's delay
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Errorf("one-way a→b = %v, want 10ms", d)
		}
		b.fromHost <- ipv4("198.51.100.10", "203.0.113.1", 2, 100)
		<-a.toHost
		if rtt := time.Since(start); rtt != 40*time.Millisecond {
			t.Errorf("RTT = %v, want 40ms (sum of both links)", rtt)
		}
	})
}

func TestFIFOWithoutReorder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lc      LinkConfig
		inOrder bool
	}{
		{"no jitter", LinkConfig{Delay: 20 * time.Millisecond}, true},
		{"jitter", LinkConfig{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond}, true},
		{"jitter+reorder", LinkConfig{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Reorder: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, a, b := twoLinks(t, Config{Seed: 1}, LinkConfig{}, tc.lc)
				const n = 200
				start := time.Now()
				for i := range n {
					a.fromHost <- ipv4("203.0.113.1", "198.51.100.10", uint32(i), 100)
					time.Sleep(100 * time.Microsecond)
				}
				var got []uint32
				for range n {
					p := <-b.toHost
					got = append(got, seqOf(p))
				}
				elapsed := time.Since(start)
				if sorted := slices.IsSorted(got); sorted != tc.inOrder {
					t.Errorf("in order = %v, want %v", sorted, tc.inOrder)
				}
				if lo, hi := 20*time.Millisecond, 20*time.Millisecond+tc.lc.Jitter+n*100*time.Microsecond; elapsed < lo || elapsed > hi {
					t.Errorf("delivery took %v, want within [%v, %v]", elapsed, lo, hi)
				}
			})
		})
	}
}

func TestLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, a, b := twoLinks(t, Config{Seed: 7}, LinkConfig{}, LinkConfig{Loss: 0.3})
		const n = 5000
		for i := range n {
			a.fromHost <- ipv4("203.0.113.1", "198.51.100.10", uint32(i), 60)
		}
		synctest.Wait()
		got := len(drain(b))
		s := l.Stats().Links[1]
		if uint64(got)+s.Lost != n {
			t.Errorf("delivered %d + lost %d != %d", got, s.Lost, n)
		}
		// 30% of 5000 = 1500, σ ≈ 32: 6σ is generous and deterministic anyway.
		if math.Abs(float64(s.Lost)-1500) > 200 {
			t.Errorf("lost %d of %d, want about 1500", s.Lost, n)
		}
	})
}

func TestQueueLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, a, b := twoLinks(t, Config{QueueLimit: 10}, LinkConfig{}, LinkConfig{Delay: time.Second})
		for i := range 25 {
			a.fromHost <- ipv4("203.0.113.1", "198.51.100.10", uint32(i), 60)
		}
		synctest.Wait()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := len(drain(b)); got != 10 {
			t.Errorf("delivered %d, want 10", got)
		}
		if d := l.Stats().Links[1].QueueDrops; d != 15 {
			t.Errorf("queue drops %d, want 15", d)
		}
	})
}

func TestCloseWithQueuedPackets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(Config{})
		a, b := newMemLink(16), newMemLink(16)
		must(t, l.AddLink("a", a, pfx("203.0.113.1/32"), LinkConfig{}))
		must(t, l.AddLink("b", b, pfx("198.51.100.0/24"), LinkConfig{Delay: time.Hour}))
		l.Start()
		a.fromHost <- ipv4("203.0.113.1", "198.51.100.10", 1, 60)
		synctest.Wait()
		must(t, l.Close())
		// synctest.Test fails if any goroutine of the line is still alive.
	})
}

func TestBadConfig(t *testing.T) {
	l := New(Config{})
	defer l.Close()
	if err := l.AddLink("x", newMemLink(1), nil, LinkConfig{Loss: 2}); err == nil {
		t.Error("loss 2 accepted")
	}
	if err := l.AddLink("y", newMemLink(1), pfx("2001:db8::/32"), LinkConfig{}); err == nil {
		t.Error("IPv6 prefix accepted")
	}
	if err := l.SetLinkConfig("nope", LinkConfig{}); err == nil {
		t.Error("SetLinkConfig on unknown link accepted")
	}
}

func drain(m *memLink) []uint32 {
	var out []uint32
	for {
		select {
		case p := <-m.toHost:
			out = append(out, seqOf(p))
		default:
			return out
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkForward measures the line alone (no kernel) moving 1500-byte
// packets between two in-memory links.
func BenchmarkForward(b *testing.B) {
	// No tail drops here: the producer is faster than any real TCP sender.
	l := New(Config{QueueLimit: math.MaxInt})
	x, y := newMemLink(4096), newMemLink(4096)
	l.AddLink("x", x, pfx("203.0.113.1/32"), LinkConfig{})
	l.AddLink("y", y, pfx("198.51.100.0/24"), LinkConfig{})
	l.Start()
	defer l.Close()
	pkt := ipv4("203.0.113.1", "198.51.100.10", 1, 1500)
	done := make(chan struct{})
	go func() {
		for range b.N {
			<-y.toHost
		}
		close(done)
	}()
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	for range b.N {
		x.fromHost <- pkt
	}
	<-done
}
