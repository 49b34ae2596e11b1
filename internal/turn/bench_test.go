package turn

import (
	"context"
	"io"
	"runtime"
	"testing"

	"github.com/icetcp/icetcp/internal/lab/coturn"
)

func benchCoturn(b *testing.B) Config {
	c := coturn.StartT(b, coturn.Config{AllowLoopbackPeers: true, Users: map[string]string{testUser: testPassword}})
	return credModes[0].client(c)
}

// benchAllocation is an allocation on a new coturn, closed at the end.
func benchAllocation(b *testing.B) *Allocation {
	a, err := Allocate(context.Background(), benchCoturn(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a
}

// BenchmarkAllocate: connect, 401 challenge, Allocate, against coturn on
// loopback (Close not timed).
func BenchmarkAllocate(b *testing.B) {
	cfg := benchCoturn(b)
	ctx := context.Background()
	for b.Loop() {
		a, err := Allocate(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		a.Close()
		b.StartTimer()
	}
}

// BenchmarkConnect: Connect and ConnectionBind to a loopback listener
// through coturn, on one allocation.
func BenchmarkConnect(b *testing.B) {
	ctx := context.Background()
	a := benchAllocation(b)
	l := serveLoopback(b, discard)
	for b.Loop() {
		c, err := a.Connect(ctx, addrPort(l.Addr()))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
}

// BenchmarkRelayThroughput: bytes from the client to a loopback peer
// through coturn (MB/s is the figure).
func BenchmarkRelayThroughput(b *testing.B) {
	ctx := context.Background()
	a := benchAllocation(b)
	l := listenLoopbackTB(b)
	got := make(chan int64, 1)
	go func() {
		p, err := l.Accept()
		if err != nil {
			got <- 0
			return
		}
		n, _ := io.Copy(io.Discard, p)
		p.Close()
		got <- n
	}()
	c, err := a.Connect(ctx, addrPort(l.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	var sent int64
	for b.Loop() {
		n, err := c.Write(chunk)
		if err != nil {
			b.Fatal(err)
		}
		sent += int64(n)
	}
	// The peer's count proves the bytes went through; coturn resets rather
	// than relays a FIN, so wait for its reset after closing.
	c.Close()
	if n := <-got; n < sent-(4<<20) {
		b.Logf("the peer counted %d of %d bytes before the reset", n, sent)
	}
}

// BenchmarkIdleAllocation reports the client-side memory and goroutines
// of an idle allocation (heap and stacks, after GC).
func BenchmarkIdleAllocation(b *testing.B) {
	cfg := benchCoturn(b)
	ctx := context.Background()
	const n = 100
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		var as []*Allocation
		for range n {
			a, err := Allocate(ctx, cfg)
			if err != nil {
				b.Fatal(err)
			}
			as = append(as, a)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		g1 := runtime.NumGoroutine()
		b.ReportMetric(float64(after.HeapInuse+after.StackInuse-before.HeapInuse-before.StackInuse)/n, "B/idle-alloc")
		b.ReportMetric(float64(g1-g0)/n, "goroutines/alloc")
		for _, a := range as {
			a.Close()
		}
	}
}
