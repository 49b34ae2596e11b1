package limits

import "net/netip"

// SourceKey is the unit of per-source limits: an IPv4 address (an
// IPv4-mapped IPv6 address counts as its IPv4 address), or the /64 of an
// IPv6 address. One subscriber usually holds a whole /64 and can walk
// through it, so a per-address limit would not bind it. The zero Addr
// gives the zero Prefix, one key for every source whose address is unknown.
func SourceKey(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	case ip.Is6():
		p, _ := ip.WithZone("").Prefix(64) // never fails for a valid IPv6 address
		return p
	}
	return netip.Prefix{}
}
