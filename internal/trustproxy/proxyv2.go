package trustproxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/pires/go-proxyproto"
)

// The PROXY protocol version 2 header (proxy-protocol.txt §2.2): a
// 12-byte signature, the version and command, the family and transport,
// a 16-bit length, then that many bytes of addresses and TLVs.
const (
	v2Fixed = 16
	// MaxHeader bounds the bytes after the fixed part: two IPv6
	// addresses and ports are 36; the rest is TLVs (AWS and GCP load
	// balancers add a few dozen bytes). A longer header is refused.
	MaxHeader = 2048
)

// ErrHeader is a PROXY header that cannot be used: not version 2, too
// long, malformed, or not for TCP.
var ErrHeader = errors.New("trustproxy: bad PROXY protocol header")

// Header is what a PROXY v2 header says about a connection. Local is the
// LOCAL command (the proxy's own connection, a health check): the real
// endpoints stand.
type Header struct {
	Source, Destination netip.AddrPort
	Local               bool
}

// ReadHeader reads a PROXY protocol v2 header from r, if one starts it. It
// reads exactly the header, never a byte beyond; when r does not start
// with the v2 signature, it returns the bytes it took (at most 12), which
// belong to the stream, with ok false. A v1 header ("PROXY ...") is not
// taken: the load balancer must send version 2.
func ReadHeader(r io.Reader) (h Header, taken []byte, ok bool, err error) {
	var fixed [v2Fixed]byte
	sig := fixed[:len(proxyproto.SIGV2)]
	// One byte first: a stream that is not a header (a STUN message starts
	// with 0x00 or 0x01, TLS with 0x16) is known at once, and what a
	// client sends in short writes is never waited for.
	if _, err := io.ReadFull(r, sig[:1]); err != nil {
		return h, nil, false, err
	}
	if sig[0] != proxyproto.SIGV2[0] {
		return h, sig[:1], false, nil
	}
	if n, err := io.ReadFull(r, sig[1:]); err != nil {
		return h, sig[:1+n], false, err
	}
	if !bytes.Equal(sig, proxyproto.SIGV2) {
		return h, sig, false, nil
	}
	if _, err := io.ReadFull(r, fixed[len(sig):]); err != nil {
		return h, nil, false, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	n := int(binary.BigEndian.Uint16(fixed[14:16]))
	if n > MaxHeader {
		return h, nil, false, fmt.Errorf("%w: %d bytes of addresses and TLVs, more than %d", ErrHeader, n, MaxHeader)
	}
	all := make([]byte, v2Fixed+n)
	copy(all, fixed[:])
	if _, err := io.ReadFull(r, all[v2Fixed:]); err != nil {
		return h, nil, false, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	h, err = ParseHeader(all)
	return h, nil, err == nil, err
}

// ParseHeader parses one whole PROXY v2 header (what ReadHeader framed)
// with go-proxyproto.
func ParseHeader(b []byte) (Header, error) {
	ph, err := proxyproto.Read(bufio.NewReaderSize(bytes.NewReader(b), max(len(b), 16)))
	if err != nil {
		return Header{}, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	if ph.Version != 2 {
		return Header{}, fmt.Errorf("%w: version %d", ErrHeader, ph.Version)
	}
	if ph.Command.IsLocal() {
		return Header{Local: true}, nil
	}
	src, dst, ok := ph.TCPAddrs()
	if !ok {
		return Header{}, fmt.Errorf("%w: %v, not TCP", ErrHeader, ph.TransportProtocol)
	}
	s, d := src.AddrPort(), dst.AddrPort()
	return Header{
		Source:      netip.AddrPortFrom(s.Addr().Unmap(), s.Port()),
		Destination: netip.AddrPortFrom(d.Addr().Unmap(), d.Port()),
	}, nil
}

// Conn is a connection that came through a trusted proxy: its addresses
// are those the PROXY header named, and bytes taken while looking for the
// header are read first. TCPConn gives the socket underneath (for
// splice(2) once those bytes are read, SetLinger, CloseWrite).
type Conn struct {
	*net.TCPConn
	remote, local net.Addr
	prefix        []byte // guarded by the reader: Read is not called concurrently
}

func (c *Conn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.TCPConn.Read(p)
}

// ReadFrom and WriteTo keep the socket's splice(2) paths.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	var n int64
	if len(c.prefix) > 0 {
		m, err := w.Write(c.prefix)
		n += int64(m)
		c.prefix = c.prefix[m:]
		if err != nil {
			return n, err
		}
	}
	m, err := c.TCPConn.WriteTo(w)
	return n + m, err
}

func (c *Conn) RemoteAddr() net.Addr { return c.remote }
func (c *Conn) LocalAddr() net.Addr  { return c.local }

// TCPConn returns the socket underneath.
func (c *Conn) Socket() *net.TCPConn { return c.TCPConn }

// Buffered reports whether bytes taken with the header are still to be
// read (then the socket alone is not the stream).
func (c *Conn) Buffered() int { return len(c.prefix) }
