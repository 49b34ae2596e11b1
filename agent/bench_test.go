package agent

import (
	"fmt"
	"io"
	"net"
	"testing"
)

// BenchmarkThroughput compares a selected icetcp connection (RFC 4571
// frames, consent checks sharing the stream) with a raw loopback TCP
// connection between the same kind of endpoints, like for like: the same
// write size, and on both the reader reads into a 64 KiB buffer.
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		run := func(b *testing.B, w io.Writer, r io.Reader) {
			buf := make([]byte, size)
			done := make(chan error, 1)
			go func() {
				rb := make([]byte, 64<<10)
				want := int64(b.N) * int64(size)
				for got := int64(0); got < want; {
					n, err := r.Read(rb)
					got += int64(n)
					if err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				if _, err := w.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("raw-tcp/%dKiB", size>>10), func(b *testing.B) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			accepted := make(chan net.Conn, 1)
			go func() { c, _ := l.Accept(); accepted <- c }()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			s := <-accepted
			defer c.Close()
			defer s.Close()
			run(b, c, s)
		})
		b.Run(fmt.Sprintf("icetcp/%dKiB", size>>10), func(b *testing.B) {
			x, y, errA, errB := connectPair(b, activeOnly(baseConfig(RoleControlling)), passiveOnly(baseConfig(RoleControlled)), nil, nil)
			if errA != nil || errB != nil {
				b.Fatal(errA, errB)
			}
			defer x.Close()
			defer y.Close()
			run(b, x, y)
		})
	}
}

// BenchmarkConnect measures a whole Connect on loopback: gathering,
// signaling in memory, checks and nomination.
func BenchmarkConnect(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		x, y, errA, errB := connectPair(b, baseConfig(RoleAuto), baseConfig(RoleAuto), nil, nil)
		if errA != nil || errB != nil {
			b.Fatal(errA, errB)
		}
		x.Close()
		y.Close()
	}
}
