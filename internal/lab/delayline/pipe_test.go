package delayline

import (
	"net/netip"
	"os"
	"sync"
)

// memLink is an in-memory stand-in for a TUN device. The line sees the
// Endpoint side (Read gets what the host sent, Write delivers to the host);
// the test plays the host through send and recv.
type memLink struct {
	fromHost chan []byte
	toHost   chan []byte
	closed   chan struct{}
	once     sync.Once
}

func newMemLink(buf int) *memLink {
	return &memLink{
		fromHost: make(chan []byte, buf),
		toHost:   make(chan []byte, buf),
		closed:   make(chan struct{}),
	}
}

func (m *memLink) Read(b []byte) (int, error) {
	select {
	case p := <-m.fromHost:
		return copy(b, p), nil
	case <-m.closed:
		return 0, os.ErrClosed
	}
}

func (m *memLink) Write(b []byte) (int, error) {
	p := append([]byte(nil), b...)
	select {
	case m.toHost <- p:
		return len(b), nil
	case <-m.closed:
		return 0, os.ErrClosed
	}
}

func (m *memLink) Close() error {
	m.once.Do(func() { close(m.closed) })
	return nil
}

// ipv4 builds a minimal IPv4 header (the line only reads version and
// destination) followed by a 4-byte sequence number.
func ipv4(src, dst string, seq uint32, size int) []byte {
	b := make([]byte, max(size, 24))
	b[0] = 0x45
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	b[20], b[21], b[22], b[23] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	return b
}

func seqOf(b []byte) uint32 {
	return uint32(b[20])<<24 | uint32(b[21])<<16 | uint32(b[22])<<8 | uint32(b[23])
}

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}
