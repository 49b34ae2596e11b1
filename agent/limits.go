package agent

import (
	"net/netip"
	"sync"
)

// inboundLimit counts connections that have not yet proved who they are,
// in total and per source, so that one source cannot take every slot.
// IPv6 sources count per /64: one host usually owns a whole /64.
type inboundLimit struct {
	maxTotal, maxPerSource int

	mu    sync.Mutex // guards following
	total int
	by    map[netip.Addr]int
}

func newInboundLimit(maxTotal, maxPerSource int) *inboundLimit {
	return &inboundLimit{maxTotal: maxTotal, maxPerSource: maxPerSource}
}

// sourceKey groups addresses that one party controls.
func sourceKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// take reserves a slot for src; false when src or everyone is at the limit.
func (l *inboundLimit) take(src netip.Addr) bool {
	k := sourceKey(src)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.maxTotal || l.by[k] >= l.maxPerSource {
		return false
	}
	if l.by == nil {
		l.by = map[netip.Addr]int{}
	}
	l.total++
	l.by[k]++
	return true
}

// give returns src's slot.
func (l *inboundLimit) give(src netip.Addr) {
	k := sourceKey(src)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by[k] == 0 {
		return
	}
	l.total--
	if l.by[k]--; l.by[k] == 0 {
		delete(l.by, k)
	}
	if l.total == 0 {
		l.by = nil // an idle agent keeps no map
	}
}
