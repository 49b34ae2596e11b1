package framing

import "encoding/binary"

// STUN header layout (RFC 5389 §6).
const (
	stunHeaderSize  = 20
	stunMagicCookie = 0x2112A442
)

// IsSTUN reports whether p is a whole STUN message rather than application
// data (RFC 5389 §6 and §7.3): at least 20 bytes, the two most significant
// bits zero, the magic cookie 0x2112A442 at bytes 4..8, and a length field
// equal to len(p)-20 and a multiple of 4 (attributes are padded to 4 bytes).
//
// With RFC 4571 framing one frame is one message, so the length must match the
// frame exactly; that, on top of the 32-bit cookie, makes a false positive on
// application data unlikely (about 2^-32 per frame of a plausible size).
func IsSTUN(p []byte) bool {
	if len(p) < stunHeaderSize {
		return false
	}
	if p[0]&0xC0 != 0 {
		return false
	}
	if binary.BigEndian.Uint32(p[4:8]) != stunMagicCookie {
		return false
	}
	n := int(binary.BigEndian.Uint16(p[2:4]))
	return n%4 == 0 && n == len(p)-stunHeaderSize
}
