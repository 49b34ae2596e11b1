package stuntcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pion/stun"
)

const (
	headerSize  = 20
	magicCookie = 0x2112A442
	// MaxBodySize is the largest message body: the length field has 16 bits.
	// Servers that hold many connections may want less; see Server.
	MaxBodySize = 65535
)

// ErrNotSTUN means a header that cannot start a STUN message: the top two
// bits are set, the magic cookie is wrong, or the length is not a multiple of
// 4. The stream cannot be resynchronised after it.
var ErrNotSTUN = errors.New("stuntcp: not a STUN message")

// ErrMalformed means a message whose header is valid but whose attributes do
// not parse (pion/stun's decode error is wrapped too).
var ErrMalformed = errors.New("stuntcp: malformed STUN message")

// ErrTooLarge means a header announces a body larger than the reader allows.
var ErrTooLarge = errors.New("stuntcp: STUN message too large")

// ReadMessage reads one STUN message from a stream (20-byte header, then the
// body its length field announces) into m, reusing m.Raw, and decodes it.
// A non-STUN header (top bits, magic cookie, length not a multiple of 4)
// returns an error wrapping ErrNotSTUN without reading further. A stream that
// ends inside a message returns io.ErrUnexpectedEOF (wrapped); one that ends
// before the first byte returns io.EOF (wrapped). Bodies are at most
// MaxBodySize (64 KiB - 1) by construction of the 16-bit length.
func ReadMessage(r io.Reader, m *stun.Message) error {
	return readMessage(r, m, MaxBodySize)
}

// ReadMessageLimit is ReadMessage with a body limit: a header announcing
// more than maxBody bytes returns an error wrapping ErrTooLarge before
// anything is allocated for the body, so a server can refuse a 64 KiB
// allocation per connection for a request that needs a few bytes.
func ReadMessageLimit(r io.Reader, m *stun.Message, maxBody int) error {
	return readMessage(r, m, maxBody)
}

func readMessage(r io.Reader, m *stun.Message, maxBody int) error {
	if cap(m.Raw) < headerSize {
		m.Raw = make([]byte, headerSize, 512)
	}
	m.Raw = m.Raw[:headerSize]
	if _, err := io.ReadFull(r, m.Raw); err != nil {
		return fmt.Errorf("stuntcp: read header: %w", err)
	}
	h := m.Raw
	n := int(binary.BigEndian.Uint16(h[2:4]))
	switch {
	case h[0]&0xC0 != 0:
		return fmt.Errorf("%w: first byte %#02x has a top bit set", ErrNotSTUN, h[0])
	case binary.BigEndian.Uint32(h[4:8]) != magicCookie:
		return fmt.Errorf("%w: magic cookie %#08x", ErrNotSTUN, binary.BigEndian.Uint32(h[4:8]))
	case n%4 != 0:
		return fmt.Errorf("%w: length %d is not a multiple of 4", ErrNotSTUN, n)
	case n > maxBody:
		return fmt.Errorf("%w: %d-byte body, limit %d", ErrTooLarge, n, maxBody)
	}
	m.Raw = grow(m.Raw, headerSize+n)
	if _, err := io.ReadFull(r, m.Raw[headerSize:]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("stuntcp: read %d-byte body: %w", n, err)
	}
	if err := m.Decode(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// grow returns b resized to n bytes, keeping its first bytes.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n)
	copy(nb, b)
	return nb
}
