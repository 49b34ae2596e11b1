package trustproxy

import (
	"fmt"
	"net/netip"
	"strings"
)

// Set is the trusted proxies' addresses. The zero value trusts nobody.
type Set []netip.Prefix

// ParseSet reads prefixes (CIDR, e.g. 10.0.0.0/8) or single addresses.
func ParseSet(specs []string) (Set, error) {
	var s Set
	for _, spec := range specs {
		spec = strings.TrimSpace(spec)
		if p, err := netip.ParsePrefix(spec); err == nil {
			s = append(s, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(spec)
		if err != nil {
			return nil, fmt.Errorf("trustproxy: %q is neither an address nor a CIDR prefix", spec)
		}
		a = a.Unmap()
		s = append(s, netip.PrefixFrom(a, a.BitLen()))
	}
	return s, nil
}

// Contains reports whether a is a trusted proxy's address (an IPv4-mapped
// IPv6 address counts as its IPv4 address).
func (s Set) Contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range s {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
