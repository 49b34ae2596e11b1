package stuntcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// RFC 5780 §2/§4.3: a server with two IP addresses and two ports answers
// on all four combinations and tells the client, in OTHER-ADDRESS, the
// address that differs from the one it reached in both IP and port. Over
// TCP only the mapping test needs this (CHANGE-REQUEST does not exist for
// TCP, §3); the server's second IP also lets it probe a client from an
// address the client never contacted (SYN-PROBE).

// ListenRFC5780 opens the four listeners of a server with a primary
// (IP1:P1) and an alternate (IP2:P2) address, in the order IP1:P1, IP1:P2,
// IP2:P1, IP2:P2. Ports may be 0: P1, then P2, are picked by the kernel on
// IP1 and reused on IP2; the returned primary and alternate carry them.
// Both IPs must be specific addresses of this host, of one family, and
// differ; so must the ports. On error nothing stays open.
func ListenRFC5780(primary, alternate netip.AddrPort) ([]net.Listener, netip.AddrPort, netip.AddrPort, error) {
	for try := 0; ; try++ {
		ls, p, a, err := listenRFC5780(primary, alternate, try%2 == 1)
		// A port the kernel picked on one IP may be taken on the other: a
		// busy host can have most ports of an address held by sockets in
		// TIME_WAIT of clients that bound it (which a listener may not
		// share). Pick again, letting each IP choose in turn.
		if err == nil || try == 256 || primary.Port() != 0 && alternate.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) {
			return ls, p, a, err
		}
	}
}

// listenRFC5780 listens on both ports of both IPs; a port given as 0 is
// chosen by the kernel on the primary IP, or with altFirst on the
// alternate.
func listenRFC5780(primary, alternate netip.AddrPort, altFirst bool) (ls []net.Listener, p, a netip.AddrPort, err error) {
	p, a = unmapAP(primary), unmapAP(alternate)
	fail := func(err error) ([]net.Listener, netip.AddrPort, netip.AddrPort, error) {
		for _, l := range ls {
			l.Close()
		}
		return nil, netip.AddrPort{}, netip.AddrPort{}, fmt.Errorf("stuntcp: listen %s with alternate %s: %w", primary, alternate, err)
	}
	switch {
	case !p.Addr().IsValid() || p.Addr().IsUnspecified() || !a.Addr().IsValid() || a.Addr().IsUnspecified():
		return fail(errors.New("both addresses need a specific IP"))
	case p.Addr().Is4() != a.Addr().Is4():
		return fail(errors.New("the addresses are of different families"))
	case p.Addr() == a.Addr():
		return fail(errors.New("the alternate IP equals the primary IP"))
	case p.Port() != 0 && p.Port() == a.Port():
		return fail(errors.New("the alternate port equals the primary port"))
	}
	listen := func(ip netip.Addr, port uint16) (uint16, error) {
		l, err := net.Listen(network(ip), netip.AddrPortFrom(ip, port).String())
		if err != nil {
			return 0, err
		}
		ls = append(ls, l)
		return uint16(l.Addr().(*net.TCPAddr).Port), nil
	}
	first, second := p.Addr(), a.Addr()
	if altFirst {
		first, second = second, first
	}
	var ports [2]uint16
	byIP := map[netip.Addr][]net.Listener{}
	for i, want := range []uint16{p.Port(), a.Port()} {
		port, err := listen(first, want)
		if err != nil {
			return fail(err)
		}
		if _, err := listen(second, port); err != nil {
			return fail(err)
		}
		ports[i] = port
		byIP[first] = append(byIP[first], ls[len(ls)-2])
		byIP[second] = append(byIP[second], ls[len(ls)-1])
	}
	// The primary IP's listeners first, in port order: callers take the
	// first as the server's own address.
	ls = append(byIP[p.Addr()], byIP[a.Addr()]...)
	return ls, netip.AddrPortFrom(p.Addr(), ports[0]), netip.AddrPortFrom(a.Addr(), ports[1]), nil
}

// otherAddress is OTHER-ADDRESS for a connection that reached local: the
// other IP and the other port (RFC 5780 §7.4: where a "change IP and
// port" answer would come from). ok is false when RFC 5780 is off or
// local is none of the four addresses.
func otherAddress(primary, alternate, local netip.AddrPort) (netip.AddrPort, bool) {
	ip, ok := otherIP(primary, alternate, local.Addr())
	if !ok {
		return netip.AddrPort{}, false
	}
	switch local.Port() {
	case primary.Port():
		return netip.AddrPortFrom(ip, alternate.Port()), true
	case alternate.Port():
		return netip.AddrPortFrom(ip, primary.Port()), true
	}
	return netip.AddrPort{}, false
}

// otherIP is the server IP a connection to local did not reach: the one
// SYN probes leave from.
func otherIP(primary, alternate netip.AddrPort, local netip.Addr) (netip.Addr, bool) {
	if !primary.IsValid() || !alternate.IsValid() {
		return netip.Addr{}, false
	}
	switch local.Unmap() {
	case primary.Addr():
		return alternate.Addr(), true
	case alternate.Addr():
		return primary.Addr(), true
	}
	return netip.Addr{}, false
}

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// network pins the family of a listener or dialer.
func network(a netip.Addr) string {
	if a.Is4() {
		return "tcp4"
	}
	return "tcp6"
}
