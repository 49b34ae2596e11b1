package secure

import (
	"io"
	"net"
	"testing"
)

// BenchmarkHandshake is one whole handshake (both sides, key confirmation
// included) over loopback TCP, connection set-up excluded.
func BenchmarkHandshake(b *testing.B) {
	s := testSecret(b)
	for b.Loop() {
		b.StopTimer()
		x, y := tcpPair(b)
		b.StartTimer()
		cr, sr := handshakePair(b, x, y, s, s, Config{})
		if cr.err != nil || sr.err != nil {
			b.Fatal(cr.err, sr.err)
		}
		b.StopTimer()
		x.Close()
		y.Close()
		b.StartTimer()
	}
}

// BenchmarkThroughput compares plain loopback TCP with the secure layer
// over it, 64 KiB writes, one direction.
func BenchmarkThroughput(b *testing.B) {
	const chunk = 64 << 10
	run := func(b *testing.B, w io.Writer, r io.Reader, closeW func() error) {
		buf := make([]byte, chunk)
		b.SetBytes(chunk)
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, r)
			done <- err
		}()
		for b.Loop() {
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := closeW(); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.Run("plain-tcp", func(b *testing.B) {
		x, y := tcpPair(b)
		run(b, x, y, x.CloseWrite)
	})
	b.Run("secure", func(b *testing.B) {
		c, s := securePair(b)
		run(b, c, s, c.CloseWrite)
	})
	b.Run("seal+open-only", func(b *testing.B) {
		// The cryptography alone, no sockets: the ceiling of the layer.
		c, s := securePair(b)
		m := newMemConn(nil)
		c.t = m
		buf := make([]byte, chunk)
		b.SetBytes(chunk)
		for b.Loop() {
			m.written.Reset()
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
			s.t = newMemConn(m.written.Bytes())
			if _, err := io.ReadFull(s, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

var _ net.Conn = (*memConn)(nil)
