package interop

import (
	"net"
	"net/netip"

	"github.com/pion/ice/v2"
)

func netAddrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

func netipAddr(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

func networkType(a netip.Addr) ice.NetworkType {
	if a.Is4() {
		return ice.NetworkTypeTCP4
	}
	return ice.NetworkTypeTCP6
}
