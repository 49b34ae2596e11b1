package candidate

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net/netip"
	"strconv"
)

// Foundation returns the RFC 8445 §5.1.1.3 foundation: candidates with the
// same type, base IP, server IP and transport (always TCP here) get the
// same foundation, any difference gives a different one with overwhelming
// probability. The checklist unfreezes pairs by foundation, so equal inputs
// must map to equal strings across processes: this is a hash, not a counter.
//
// The result is a decimal number of at most 20 digits, inside the ice-char
// alphabet ([a-zA-Z0-9+/], 1..32 chars) and shaped like the foundations
// browsers send. Zones and IPv4-in-IPv6 mapping do not change the IP, so
// they do not change the foundation.
func Foundation(t Type, base netip.Addr, server netip.Addr) string {
	h := sha256.New()
	// Each part has a fixed width or a length prefix, so no two inputs
	// encode to the same bytes.
	h.Write([]byte{byte(t)})
	writeAddr(h, base)
	writeAddr(h, server)
	h.Write([]byte("tcp"))
	var sum [sha256.Size]byte
	return strconv.FormatUint(binary.BigEndian.Uint64(h.Sum(sum[:0])), 10)
}

func writeAddr(h hash.Hash, a netip.Addr) {
	a = a.WithZone("").Unmap()
	b, _ := a.MarshalBinary() // cannot fail; empty for the zero Addr
	h.Write([]byte{byte(len(b))})
	h.Write(b)
}
