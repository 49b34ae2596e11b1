package agent

import (
	"io"
	"net"
	"testing"
)

// BenchmarkThroughput compares a selected icetcp connection (RFC 4571
// frames, consent checks sharing the stream) with a raw loopback TCP
// connection, in one run: 64 KiB writes one way.
func BenchmarkThroughput(b *testing.B) {
	const chunk = 64 << 10
	run := func(b *testing.B, w io.Writer, r io.Reader) {
		buf := make([]byte, chunk)
		done := make(chan error, 1)
		go func() {
			_, err := io.CopyN(io.Discard, r, int64(b.N)*chunk)
			done <- err
		}()
		b.SetBytes(chunk)
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
	b.Run("raw-tcp", func(b *testing.B) {
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
	b.Run("icetcp", func(b *testing.B) {
		x, y, errA, errB := connectPair(b, activeOnly(baseConfig(RoleControlling)), passiveOnly(baseConfig(RoleControlled)), nil, nil)
		if errA != nil || errB != nil {
			b.Fatal(errA, errB)
		}
		defer x.Close()
		defer y.Close()
		run(b, x, y)
	})
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
