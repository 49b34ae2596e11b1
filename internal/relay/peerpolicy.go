package relay

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrPeerForbidden means the relay refuses to talk to a peer address; the
// wrapped message says why. Connect answers 403 (pion's permission handler)
// or 447 (when only the port makes it forbidden, see Server doc).
var ErrPeerForbidden = errors.New("relay: peer address forbidden")

// addrClass sorts an IP by what relaying to it would reach.
type addrClass int

const (
	classPublic   addrClass = iota
	classLoopback           // 127.0.0.0/8, ::1
	classPrivate            // RFC 1918, RFC 4193, 100.64.0.0/10 (RFC 6598), link-local
	classSpecial            // never a peer: unspecified, multicast, 0.0.0.0/8, 240.0.0.0/4 and broadcast
)

func (c addrClass) String() string {
	switch c {
	case classLoopback:
		return "loopback"
	case classPrivate:
		return "private"
	case classSpecial:
		return "special-purpose"
	}
	return "public"
}

var (
	prefixThisNet  = netip.MustParsePrefix("0.0.0.0/8")
	prefixReserved = netip.MustParsePrefix("240.0.0.0/4") // includes 255.255.255.255
	prefixCGNAT    = netip.MustParsePrefix("100.64.0.0/10")
	prefixNAT64    = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: reaches the embedded IPv4 address
)

// classify returns ip's class. IPv4-mapped IPv6 addresses and NAT64
// addresses (64:ff9b::/96) are judged by the IPv4 address they reach.
func classify(ip netip.Addr) addrClass {
	ip = ip.Unmap()
	if ip.Is6() && prefixNAT64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:]))
	}
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsMulticast(),
		prefixThisNet.Contains(ip), prefixReserved.Contains(ip):
		return classSpecial
	case ip.IsLoopback():
		return classLoopback
	case ip.IsPrivate(), prefixCGNAT.Contains(ip), ip.IsLinkLocalUnicast():
		return classPrivate
	}
	return classPublic
}

// hostView is what the peer policy needs to know about this relay.
type hostView interface {
	// isRelayAddr reports a live relayed address of this server
	// (RelayIP:port of a current allocation).
	isRelayAddr(netip.AddrPort) bool
	// isListenAddr reports one of the server's STUN/TURN listening
	// addresses (a wildcard listener matches every own IP).
	isListenAddr(netip.AddrPort) bool
	// isOwnIP reports RelayIP and the addresses of this host.
	isOwnIP(netip.Addr) bool
}

// peerPolicy decides which peers the relay talks to. The zero value refuses
// loopback and private peers.
type peerPolicy struct {
	allowLoopback, allowPrivate bool
}

func (p peerPolicy) classAllowed(c addrClass) bool {
	switch c {
	case classPublic:
		return true
	case classLoopback:
		return p.allowLoopback
	case classPrivate:
		return p.allowPrivate
	}
	return false
}

func forbidden(what any, why string) error {
	return fmt.Errorf("%w: %v is %s", ErrPeerForbidden, what, why)
}

// checkIP is the test for an IP alone (CreatePermission, and Connect before
// the port is known). An own address passes here: whether it may be reached
// depends on the port, which checkAddr decides.
func (p peerPolicy) checkIP(ip netip.Addr, h hostView) error {
	ip = ip.Unmap()
	c := classify(ip)
	switch {
	case c == classSpecial:
		return forbidden(ip, "a special-purpose address")
	case h.isOwnIP(ip):
		return nil
	case !p.classAllowed(c):
		return forbidden(ip, fmt.Sprintf("a %s address (not allowed by the relay's configuration)", c))
	}
	return nil
}

// checkAddr is the full test for a peer the relay connects to or accepts
// from. The relayed addresses of this server's own allocations are always
// reachable (two peers of one ICE session on the same relay); its STUN/TURN
// ports never are (a loop), nor are other services of its own host unless
// their class is allowed (loopback services with AllowLoopbackPeers).
func (p peerPolicy) checkAddr(ap netip.AddrPort, h hostView) error {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	ip := ap.Addr()
	c := classify(ip)
	switch {
	case c == classSpecial || ap.Port() == 0:
		return forbidden(ap, "a special-purpose address")
	case h.isRelayAddr(ap):
		return nil
	case h.isListenAddr(ap):
		return forbidden(ap, "the relay's own STUN/TURN port (a loop)")
	case !p.classAllowed(c):
		return forbidden(ap, fmt.Sprintf("a %s address (not allowed by the relay's configuration)", c))
	case h.isOwnIP(ip) && c == classPublic:
		return forbidden(ap, "a service on the relay's own host")
	}
	return nil
}
