package stuntcp

import "sync/atomic"

// Stats are the server's counters since it started (for a metrics
// endpoint). Refusals are counted by reason.
type Stats struct {
	Open     int    // connections open now
	Accepted uint64 // connections taken into service
	Answered uint64 // responses sent

	RefusedMaxConns      uint64 // closed at accept: MaxConns connections were open
	RefusedPerIP         uint64 // closed at accept: MaxConnsPerIP were open from that source
	FirstMessageTimeouts uint64 // closed: no complete request within FirstMessageTimeout
	IdleTimeouts         uint64 // closed: IdleTimeout passed without a request
	BadInput             uint64 // closed: not STUN, too large, malformed or bad FINGERPRINT

	ProbesRefused     uint64 // SYN probes answered with RST
	ProbesTimedOut    uint64 // SYN probes that met silence
	ProbesConnected   uint64 // SYN probes that completed a handshake
	ProbesUnreachable uint64 // SYN probes that failed otherwise
	ProbesDeclined    uint64 // SYN probes not run (repeat, rate, busy, no alternate)
}

// Refusals returns the refusal counters by reason label, the same labels
// the log lines use: "max-conns", "per-ip", "first-message-timeout",
// "bad-input", "probe-declined".
func (s Stats) Refusals() map[string]uint64 {
	return map[string]uint64{
		reasonMaxConns:     s.RefusedMaxConns,
		reasonPerIP:        s.RefusedPerIP,
		reasonFirstMessage: s.FirstMessageTimeouts,
		"bad-input":        s.BadInput,
		"probe-declined":   s.ProbesDeclined,
	}
}

// counters is the live form of Stats, updated without the server's lock.
type counters struct {
	accepted, answered                 atomic.Uint64
	refusedMaxConns, refusedPerIP      atomic.Uint64
	firstMessageTimeouts, idleTimeouts atomic.Uint64
	badInput                           atomic.Uint64
	probesRefused, probesTimedOut      atomic.Uint64
	probesConnected, probesUnreachable atomic.Uint64
	probesDeclined                     atomic.Uint64
}

func (c *counters) snapshot(open int) Stats {
	return Stats{
		Open:                 open,
		Accepted:             c.accepted.Load(),
		Answered:             c.answered.Load(),
		RefusedMaxConns:      c.refusedMaxConns.Load(),
		RefusedPerIP:         c.refusedPerIP.Load(),
		FirstMessageTimeouts: c.firstMessageTimeouts.Load(),
		IdleTimeouts:         c.idleTimeouts.Load(),
		BadInput:             c.badInput.Load(),
		ProbesRefused:        c.probesRefused.Load(),
		ProbesTimedOut:       c.probesTimedOut.Load(),
		ProbesConnected:      c.probesConnected.Load(),
		ProbesUnreachable:    c.probesUnreachable.Load(),
		ProbesDeclined:       c.probesDeclined.Load(),
	}
}

// countProbe counts one probe's outcome.
func (c *counters) countProbe(o ProbeOutcome) {
	switch o {
	case ProbeRefused:
		c.probesRefused.Add(1)
	case ProbeTimedOut:
		c.probesTimedOut.Add(1)
	case ProbeConnected:
		c.probesConnected.Add(1)
	case ProbeUnreachable:
		c.probesUnreachable.Add(1)
	case ProbeDeclined:
		c.probesDeclined.Add(1)
	}
}
