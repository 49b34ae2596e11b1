package delayline

import (
	"encoding/binary"
	"net/netip"
)

// IPv4 header fields the router reads and writes (RFC 791 §3.1).
const (
	ipv4MinHeader  = 20
	offTotalLen    = 2
	offID          = 4
	offFragment    = 6
	offTTL         = 8
	offProto       = 9
	offChecksum    = 10
	offSrc         = 12
	offDst         = 16
	protoICMP      = 1
	icmpTimeExceed = 11 // RFC 792: Time Exceeded, code 0: TTL exceeded in transit
	// icmpMaxLen: an ICMP error carries as much of the offending datagram
	// as fits in 576 bytes (RFC 1812 §4.3.2.3), at least its IP header and
	// the first 8 bytes of its payload (RFC 792), which hold the TCP ports
	// and sequence number that the sender's kernel needs to find the socket.
	icmpMaxLen  = 576
	icmpHeader  = 8
	routerTTL   = 64
	fragOffMask = 0x1fff
)

// headerLen is the IPv4 header length of b, 0 if b is not a whole IPv4
// header.
func headerLen(b []byte) int {
	if len(b) < ipv4MinHeader || b[0]>>4 != 4 {
		return 0
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < ipv4MinHeader || len(b) < ihl {
		return 0
	}
	return ihl
}

// hop applies one router hop to the IPv4 packet b (with header length
// ihl), as a router's forwarding path does (RFC 1812 §5.3.1): a packet that
// arrives with TTL 0 or 1 is not forwarded (hop returns false) and, unless
// ICMP must not answer it, the returned reply is an ICMP Time Exceeded from
// router back to its source; otherwise the TTL is decremented and the
// header checksum updated.
func hop(b []byte, ihl int, router netip.Addr, id uint16) (forward bool, reply []byte) {
	if b[offTTL] > 1 {
		b[offTTL]--
		binary.BigEndian.PutUint16(b[offChecksum:], 0)
		binary.BigEndian.PutUint16(b[offChecksum:], checksum(b[:ihl]))
		return true, nil
	}
	if !mayAnswer(b, ihl) {
		return false, nil
	}
	return false, timeExceeded(b, router, id)
}

// mayAnswer applies RFC 1812 §4.3.2.7: no ICMP error about an ICMP error,
// about a fragment other than the first, or to a source that does not
// name a single host.
func mayAnswer(b []byte, ihl int) bool {
	if binary.BigEndian.Uint16(b[offFragment:])&fragOffMask != 0 {
		return false
	}
	src := netip.AddrFrom4([4]byte(b[offSrc : offSrc+4]))
	if src.IsUnspecified() || src.IsMulticast() || src == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || src.IsLoopback() {
		return false
	}
	if b[offProto] == protoICMP && len(b) > ihl {
		switch b[ihl] { // ICMP type: only queries may be answered with errors
		case 0, 8, 13, 14, 15, 16, 17, 18: // echo reply/request, timestamp, information, mask
		default:
			return false
		}
	}
	return true
}

// timeExceeded builds an ICMP Time Exceeded (type 11, code 0) with IP
// identification id from router to the source of the expired packet b,
// quoting b as it arrived.
func timeExceeded(b []byte, router netip.Addr, id uint16) []byte {
	quote := min(len(b), icmpMaxLen-ipv4MinHeader-icmpHeader)
	p := make([]byte, ipv4MinHeader+icmpHeader+quote)
	p[0] = 0x45
	p[1] = 0xc0 // precedence "internetwork control", as routers send errors
	binary.BigEndian.PutUint16(p[offTotalLen:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[offID:], id)
	p[offTTL] = routerTTL
	p[offProto] = protoICMP
	r := router.As4()
	copy(p[offSrc:offSrc+4], r[:])
	copy(p[offDst:offDst+4], b[offSrc:offSrc+4])
	binary.BigEndian.PutUint16(p[offChecksum:], checksum(p[:ipv4MinHeader]))
	icmp := p[ipv4MinHeader:]
	icmp[0] = icmpTimeExceed
	copy(icmp[icmpHeader:], b[:quote])
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return p
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
