package secure

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSecret is a fixed, valid secret (fixed so that failures reproduce).
func testSecret(t testing.TB) Secret {
	t.Helper()
	s, err := newSecret(bytes.NewReader(bytes.Repeat([]byte{0, 7, 13, 21, 31, 2, 9, 17, 25, 4, 11, 28, 6}, 2)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		acc <- c
	}()
	ca, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb := <-acc
	if cb == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca.(*net.TCPConn), cb.(*net.TCPConn)
}

type hsResult struct {
	c   *Conn
	err error
}

// handshakePair runs Client over a and Server over b with the given
// secrets and returns both results.
func handshakePair(t testing.TB, a, b net.Conn, sa, sb Secret, cfg Config) (client, server hsResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc := make(chan hsResult, 1)
	go func() {
		c, err := Server(ctx, b, sb, cfg)
		if err != nil {
			b.Close() // as a real caller does: the client then sees the end
		}
		sc <- hsResult{c, err}
	}()
	c, err := Client(ctx, a, sa, cfg)
	client = hsResult{c, err}
	if err != nil {
		a.Close() // unblock a server waiting for confirmation
	}
	server = <-sc
	return client, server
}

// securePair returns two connected secure Conns over loopback TCP.
func securePair(t testing.TB) (client, server *Conn) {
	t.Helper()
	a, b := tcpPair(t)
	s := testSecret(t)
	cr, sr := handshakePair(t, a, b, s, s, Config{})
	if cr.err != nil || sr.err != nil {
		t.Fatalf("handshake: client %v, server %v", cr.err, sr.err)
	}
	return cr.c, sr.c
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// sendAll writes data then CloseWrite; recvAll reads to the end and hashes.
func sendAll(c *Conn, data []byte) error {
	if _, err := c.Write(data); err != nil {
		return err
	}
	return c.CloseWrite()
}

func recvAll(c io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	return [32]byte(h.Sum(nil)), n, err
}

// memConn is a net.Conn whose reads come from a byte slice and whose writes
// go nowhere: it feeds fuzzed bytes to the decoders.
type memConn struct {
	r       *bytes.Reader
	written bytes.Buffer
}

func newMemConn(b []byte) *memConn { return &memConn{r: bytes.NewReader(b)} }

func (m *memConn) Read(p []byte) (int, error)       { return m.r.Read(p) }
func (m *memConn) Write(p []byte) (int, error)      { return m.written.Write(p) }
func (m *memConn) Close() error                     { return nil }
func (m *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (m *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (m *memConn) SetDeadline(time.Time) error      { return nil }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }

// tamperConn changes the byte stream read from its Conn: it flips the low
// bit of the byte at offset flip (if >= 0) and drops the bytes at offsets
// [dropFrom, dropTo).
type tamperConn struct {
	net.Conn
	flip             int64
	dropFrom, dropTo int64

	mu  sync.Mutex // guards off
	off int64      // stream offset of the next byte read from Conn
}

func (c *tamperConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		c.mu.Lock()
		out := p[:0]
		for i := 0; i < n; i++ {
			pos := c.off + int64(i)
			if pos >= c.dropFrom && pos < c.dropTo {
				continue
			}
			b := p[i]
			if pos == c.flip {
				b ^= 1
			}
			out = append(out, b)
		}
		c.off += int64(n)
		c.mu.Unlock()
		if len(out) > 0 || err != nil {
			return len(out), err
		}
	}
}

// stallConn returns a timeout once, after delivering after bytes.
type stallConn struct {
	net.Conn
	after   int
	read    int
	stalled bool
}

func (c *stallConn) Read(p []byte) (int, error) {
	if !c.stalled && c.read >= c.after {
		c.stalled = true
		return 0, os.ErrDeadlineExceeded
	}
	if !c.stalled && c.read+len(p) > c.after {
		p = p[:c.after-c.read]
	}
	n, err := c.Conn.Read(p)
	c.read += n
	return n, err
}
