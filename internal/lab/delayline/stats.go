package delayline

import "sync/atomic"

// LinkStats counts one link's traffic. "Rx" is what the line read from the
// link's endpoint; "Tx" is what it wrote into it.
type LinkStats struct {
	Name        string
	RxPackets   uint64
	RxBytes     uint64
	TxPackets   uint64
	TxBytes     uint64
	Lost        uint64 // dropped by the Loss setting
	QueueDrops  uint64 // dropped because the queue was at QueueLimit
	ReadErrors  uint64
	WriteErrors uint64
}

// Stats is a snapshot of a Line's counters.
type Stats struct {
	Links   []LinkStats
	NoRoute uint64 // packets to a destination no link claims
	Invalid uint64 // packets that are not IPv4
	// Expired counts packets the router dropped for their TTL, and
	// TimeExceeded the ICMP Time Exceeded messages it sent for them (fewer
	// when RFC 1812 forbids an answer); both stay 0 without Config.Router.
	Expired, TimeExceeded uint64
}

type linkCounters struct {
	rxPackets, rxBytes, txPackets, txBytes    atomic.Uint64
	lost, queueDrops, readErrors, writeErrors atomic.Uint64
}

type lineCounters struct {
	noRoute, invalid, expired, icmpSent atomic.Uint64
}

// Stats returns the current counters, links in the order they were added.
func (l *Line) Stats() Stats {
	l.mu.Lock()
	links := l.links
	l.mu.Unlock()
	s := Stats{NoRoute: l.stats.noRoute.Load(), Invalid: l.stats.invalid.Load(),
		Expired: l.stats.expired.Load(), TimeExceeded: l.stats.icmpSent.Load()}
	for _, lk := range links {
		c := &lk.stats
		s.Links = append(s.Links, LinkStats{
			Name:        lk.name,
			RxPackets:   c.rxPackets.Load(),
			RxBytes:     c.rxBytes.Load(),
			TxPackets:   c.txPackets.Load(),
			TxBytes:     c.txBytes.Load(),
			Lost:        c.lost.Load(),
			QueueDrops:  c.queueDrops.Load(),
			ReadErrors:  c.readErrors.Load(),
			WriteErrors: c.writeErrors.Load(),
		})
	}
	return s
}
