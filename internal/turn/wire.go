package turn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v4"
)

// STUN framing (RFC 8489 §5) and the TURN attribute values pion/stun does
// not encode itself (RFC 8656, RFC 6062, RFC 6156).
const (
	headerSize  = 20
	magicCookie = 0x2112A442
	protoTCP    = 6 // REQUESTED-TRANSPORT value for TCP (IANA protocol number)
)

// errNotSTUN means bytes on a control connection that cannot start a STUN
// message; the stream cannot be resynchronised after them.
var errNotSTUN = errors.New("not a STUN message")

// readMessage reads exactly one STUN message from r: the 20-byte header,
// then the body its length field announces, never a byte more. On a data
// connection the peer's bytes follow the ConnectionBind response at once
// (RFC 6062 §5.4), so reading ahead into a buffer would swallow them.
func readMessage(r io.Reader) (*stun.Message, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[2:4]))
	switch {
	case h[0]&0xC0 != 0:
		return nil, fmt.Errorf("%w: first byte %#02x", errNotSTUN, h[0])
	case binary.BigEndian.Uint32(h[4:8]) != magicCookie:
		return nil, fmt.Errorf("%w: magic cookie %#08x", errNotSTUN, binary.BigEndian.Uint32(h[4:8]))
	case n%4 != 0:
		return nil, fmt.Errorf("%w: length %d is not a multiple of 4", errNotSTUN, n)
	}
	raw := make([]byte, headerSize+n)
	copy(raw, h[:])
	if _, err := io.ReadFull(r, raw[headerSize:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%d-byte STUN body: %w", n, err)
	}
	m := &stun.Message{Raw: raw}
	if err := m.Decode(); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotSTUN, err)
	}
	return m, nil
}

// requestedTransportTCP is REQUESTED-TRANSPORT=TCP (RFC 6062 §4.1).
var requestedTransportTCP = stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{protoTCP, 0, 0, 0}}

// requestedFamilyIPv6 is REQUESTED-ADDRESS-FAMILY=IPv6 (RFC 6156).
var requestedFamilyIPv6 = stun.RawAttribute{Type: stun.AttrRequestedAddressFamily, Value: []byte{0x02, 0, 0, 0}}

func lifetimeAttr(d time.Duration) stun.RawAttribute {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(d/time.Second))
	return stun.RawAttribute{Type: stun.AttrLifetime, Value: v}
}

func getLifetime(m *stun.Message) (time.Duration, error) {
	v, err := m.Get(stun.AttrLifetime)
	if err != nil {
		return 0, fmt.Errorf("no LIFETIME: %w", err)
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("LIFETIME of %d bytes", len(v))
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second, nil
}

func connectionIDAttr(id uint32) stun.RawAttribute {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, id)
	return stun.RawAttribute{Type: stun.AttrConnectionID, Value: v}
}

func getConnectionID(m *stun.Message) (uint32, error) {
	v, err := m.Get(stun.AttrConnectionID)
	if err != nil {
		return 0, fmt.Errorf("no CONNECTION-ID: %w", err)
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("CONNECTION-ID of %d bytes", len(v))
	}
	return binary.BigEndian.Uint32(v), nil
}

// xorAddr is an XOR-encoded address attribute of type t (XOR-PEER-ADDRESS,
// XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS share the encoding, RFC 8489 §14.2).
type xorAddr struct {
	t  stun.AttrType
	ap netip.AddrPort
}

func (a xorAddr) AddTo(m *stun.Message) error {
	x := stun.XORMappedAddress{IP: a.ap.Addr().Unmap().AsSlice(), Port: int(a.ap.Port())}
	return x.AddToAs(m, a.t)
}

func getXORAddr(m *stun.Message, t stun.AttrType) (netip.AddrPort, error) {
	var x stun.XORMappedAddress
	if err := x.GetFromAs(m, t); err != nil {
		return netip.AddrPort{}, fmt.Errorf("no %s: %w", t, err)
	}
	ip, ok := netip.AddrFromSlice(x.IP)
	if !ok || x.Port < 0 || x.Port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("bad %s %v", t, x)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(x.Port)), nil
}

// errorCode returns the ERROR-CODE of an error response.
func errorCode(m *stun.Message) (code int, reason string) {
	var ec stun.ErrorCodeAttribute
	if err := ec.GetFrom(m); err != nil {
		return 0, "error response without ERROR-CODE"
	}
	return int(ec.Code), string(ec.Reason)
}

// addrPortOf converts a net.Addr of a TCP connection; the zero value for
// others (net.Pipe in tests).
func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
