package tcpso

import "time"

// Schedule defaults, used for zero fields.
//
// A punch is made of attempts (rounds). An attempt sends a SYN at its start
// and, while its rush lasts, answers every RST or ICMP error at once with a
// new SYN (RushSYNs at most); a SYN that meets silence for AttemptTimeout is
// replaced by a new attempt at once (in a rush, silence for four times the
// far NAT's answer time, at least 50 ms, means the SYN or its RST was lost,
// and the SYN is replaced within the attempt). Only an attempt whose rush
// ran out, or whose 4-tuple was busy, is followed by a randomised back-off.
//
// Why at once: a Linux NAT (netfilter conntrack) that forwarded our SYN
// keeps that SYN's sequence number. If the peer's SYN arrives while no
// socket of ours is in SYN_SENT with that number (our socket was closed
// after a timeout or killed by an ICMP error), our host answers with a
// different sequence number, which the NAT treats as out of window and
// sends un-translated: the 4-tuple is dead for the NAT's SYN_SENT2 timeout
// (120 s). A new SYN leaves before the peer's can arrive only if it leaves
// at once. After an RST the NAT's entry is closed, which is safe; there
// the rush is about speed: the side that sent first meets the far NAT's
// RST and must open its own NAT again before the late side's SYN arrives.
const (
	DefaultAttempts       = 10
	DefaultInterval       = 100 * time.Millisecond
	DefaultMaxInterval    = time.Second
	DefaultAttemptTimeout = 2 * time.Second
	DefaultRush           = 250 * time.Millisecond
	DefaultRushSYNs       = 200
	DefaultJitter         = 0.5
)

// Schedule is the retry schedule of a simultaneous open. Zero fields take
// the Default* values above.
type Schedule struct {
	// Attempts is the number of attempts (rounds) at most; 0: DefaultAttempts.
	Attempts int
	// Interval is the back-off after an attempt whose rush ran out (or whose
	// 4-tuple was busy), doubled after each such attempt up to MaxInterval
	// and randomised by Jitter; 0: DefaultInterval.
	Interval time.Duration
	// MaxInterval caps the back-off; 0: DefaultMaxInterval (raised to
	// Interval if smaller).
	MaxInterval time.Duration
	// AttemptTimeout is how long one SYN may wait for an answer before a new
	// attempt replaces it; the kernel retransmits the SYN inside it (after
	// 1 s on Linux). 0: DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// Rush is how long, from an attempt's start, a refused (RST) or
	// unreachable SYN is followed by a new one at once. 0: DefaultRush;
	// negative: never (every refusal ends the attempt).
	Rush time.Duration
	// RushSYNs caps the SYNs one attempt sends in its rush (the peer's NAT
	// answers each with an RST while the peer has not punched yet); 0:
	// DefaultRushSYNs.
	RushSYNs int
	// Jitter randomises each back-off: the wait is uniform in
	// [(1-Jitter)·d, (1+Jitter)·d], so that two peers that failed together
	// do not retry in lockstep. 0: DefaultJitter; negative: none; at most 1.
	Jitter float64
}

func (s Schedule) withDefaults() Schedule {
	if s.Attempts <= 0 {
		s.Attempts = DefaultAttempts
	}
	if s.Interval <= 0 {
		s.Interval = DefaultInterval
	}
	if s.MaxInterval <= 0 {
		s.MaxInterval = DefaultMaxInterval
	}
	s.MaxInterval = max(s.MaxInterval, s.Interval)
	if s.AttemptTimeout <= 0 {
		s.AttemptTimeout = DefaultAttemptTimeout
	}
	switch {
	case s.Rush == 0:
		s.Rush = DefaultRush
	case s.Rush < 0:
		s.Rush = 0
	}
	if s.RushSYNs <= 0 {
		s.RushSYNs = DefaultRushSYNs
	}
	switch {
	case s.Jitter == 0:
		s.Jitter = DefaultJitter
	case s.Jitter < 0:
		s.Jitter = 0
	}
	s.Jitter = min(s.Jitter, 1)
	return s
}

// delay is the back-off after the n-th backed-off attempt (n counts from 1)
// before jitter: Interval, 2×Interval, 4×Interval, … capped at MaxInterval.
func (s Schedule) delay(n int) time.Duration {
	d := s.Interval
	for i := 1; i < n && d < s.MaxInterval; i++ {
		d *= 2
	}
	return min(d, s.MaxInterval)
}

// jittered spreads d by Jitter with u uniform in [0, 1).
func (s Schedule) jittered(d time.Duration, u float64) time.Duration {
	return time.Duration(float64(d) * (1 + s.Jitter*(2*u-1)))
}
