package tcpso

import "time"

// Schedule defaults, used for zero fields.
//
// A punch is made of attempts (rounds) and runs until it connects or its
// deadline passes (ctx's, or Schedule.Duration's): no fixed number of
// attempts, which a starved scheduler could spend in a moment while the
// peer is still punching. An attempt sends a SYN at its start and, while
// its rush lasts, answers every RST or ICMP error with a new SYN: the
// first RushBurst at once, the others after a short jittered gap
// (RushGap). A SYN that meets silence for AttemptTimeout is replaced by a
// new attempt at once (in a rush, silence for four times the far NAT's
// answer time, at least 50 ms, means the SYN or its RST was lost, and the
// SYN is replaced within the attempt). Only an attempt whose rush ran out,
// or whose 4-tuple was busy, is followed by a randomised back-off, never
// longer than half a rush.
//
// Why a SYN that met silence is replaced at once: a Linux NAT (netfilter
// conntrack) that forwarded our SYN keeps that SYN's sequence number. If
// the peer's SYN arrives while no socket of ours is in SYN_SENT with that
// number (our socket was closed after a timeout or killed by an ICMP
// error), our host answers with a different sequence number, which the NAT
// treats as out of window and sends un-translated: the 4-tuple is dead for
// the NAT's SYN_SENT2 timeout (120 s). A new SYN leaves before the peer's
// can arrive only if it leaves at once. After an RST the NAT's entry is
// closed, which is safe; there the rush is about overlap: between two NATs
// that answer RST, the peer's SYN crosses ours only if it reaches our NAT
// while a SYN of ours is out (between its leaving our NAT and the far
// NAT's RST coming back: one NAT-to-NAT round trip r), so each side must
// keep sending for as long as the other may still start.
//
// # Burst, pace and SYN rate
//
// An attempt opens with a burst: its first RushBurst (64) SYNs each leave
// as soon as the previous one was answered, so our NAT is closed only for
// the moment between an RST and the next SYN. Two sides that start
// together cross within the burst, and a side that starts late crosses
// the other's paced SYNs during its own burst (at 0 ms in the lab a burst
// lasts 2-20 ms, idle to loaded: several of the other side's gaps). After
// the burst a new SYN leaves once the previous one was answered and at
// least a gap after it left, the gap uniform in [(1-Jitter)·RushGap,
// (1+Jitter)·RushGap], so that the rush lasts its full 250 ms however
// fast the RSTs come back.
//
// The rate: on a path whose round trip to the far NAT is longer than the
// gap, the gap never applies and a rush sends one SYN per round trip, as
// before: 25 SYNs/s on a 40 ms path, 100/s on a 10 ms one, at most
// 1,000/s on a 1 ms one. On a sub-millisecond path (a LAN, two NATs on one
// segment, the NAT lab at 0 ms) RSTs come back in tens of microseconds:
// there an unpaced rush sent tens of thousands of SYNs per second and
// spent its 200 SYNs in 6-30 ms (measured in the lab), so that an attempt
// lasted far less than its Rush. With the gap, a punch that never connects
// sends about 1,000 SYNs/s on such a path (64 at once per attempt, then
// one per 0.5-1.5 ms, with back-offs), and a rush about 300. The jitter
// keeps two sides' SYNs from locking into one phase (a fixed period would
// repeat the same offset forever, as equal back-offs did before the rush
// existed).
//
// What pacing costs: between bursts, the peer's SYN finds our NAT open
// only during the r after one of our SYNs, so two paced rushes cross after
// 1/(2·r·rate²) on average: with r ≈ 50 µs and 1,000 SYNs/s on each side,
// about 10 ms, and 125 ms of overlap miss with probability e^-12. On paths
// longer than the gap, r is the whole period, as without the gap.
//
// # Why later attempts always overlap the peer's
//
// Each side alternates active periods (rushes of Rush, 250 ms) and idle
// ones (back-offs, at most Rush/2). Between two idle periods lies a whole
// rush, so any window of length Rush meets at most one idle period of a
// side: a rush of one side overlaps the other side's active time by at
// least Rush - Rush/2 = 125 ms, whatever the offset between the two, as
// long as both are still punching. That is why a back-off may not grow
// past half a rush (before, back-offs grew to 1 s ±50 % while a 0 ms rush
// lasted a few milliseconds: two sides out of step rarely met again), and
// why a punch no longer stops after a fixed number of attempts. A side
// starved of CPU (a busy host) sends nothing while it does not run; the
// same bound then holds from when it runs again.
const (
	DefaultDuration       = 10 * time.Second
	DefaultInterval       = 50 * time.Millisecond
	DefaultMaxInterval    = 80 * time.Millisecond
	DefaultAttemptTimeout = 2 * time.Second
	DefaultRush           = 250 * time.Millisecond
	DefaultRushGap        = time.Millisecond
	DefaultRushBurst      = 64
	DefaultJitter         = 0.5
)

// Schedule is the retry schedule of a simultaneous open. Zero fields take
// the Default* values above.
type Schedule struct {
	// Attempts caps the attempts (rounds); 0: no cap, the punch runs until
	// it connects or its deadline passes (see Duration).
	Attempts int
	// Duration bounds the punch from its first SYN. 0: until ctx's
	// deadline, or DefaultDuration when ctx has none.
	Duration time.Duration
	// Interval is the back-off after an attempt whose rush ran out (or whose
	// 4-tuple was busy), doubled after each such attempt up to MaxInterval
	// and randomised by Jitter; 0: DefaultInterval. With a rush, a back-off
	// never exceeds Rush/2, so that two sides' rushes always overlap.
	Interval time.Duration
	// MaxInterval caps the back-off; 0: DefaultMaxInterval (raised to
	// Interval if smaller).
	MaxInterval time.Duration
	// AttemptTimeout is how long one SYN may wait for an answer before a new
	// attempt replaces it; the kernel retransmits the SYN inside it (after
	// 1 s on Linux). 0: DefaultAttemptTimeout.
	AttemptTimeout time.Duration
	// Rush is how long, from an attempt's start, a refused (RST) or
	// unreachable SYN is followed by a new one (after RushGap). 0:
	// DefaultRush; negative: never (every refusal ends the attempt).
	Rush time.Duration
	// RushGap paces a rush: the least time between two of its SYNs,
	// randomised by Jitter (see "Pace and SYN rate"). 0: DefaultRushGap;
	// negative: none (a new SYN at once after each answer).
	RushGap time.Duration
	// RushBurst is how many SYNs open a rush at once, each as soon as the
	// previous one was answered, before the gaps; 0: DefaultRushBurst;
	// negative: none.
	RushBurst int
	// RushSYNs caps the SYNs one attempt sends in its rush; 0: no cap (the
	// gap bounds a rush to about Rush/RushGap SYNs).
	RushSYNs int
	// Jitter randomises each back-off and each gap of a rush: the wait is
	// uniform in [(1-Jitter)·d, (1+Jitter)·d], so that two peers that
	// failed together do not retry in lockstep. 0: DefaultJitter;
	// negative: none; at most 1.
	Jitter float64
}

func (s Schedule) withDefaults() Schedule {
	s.Attempts = max(s.Attempts, 0)
	s.Duration = max(s.Duration, 0)
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
	switch {
	case s.RushGap == 0:
		s.RushGap = DefaultRushGap
	case s.RushGap < 0:
		s.RushGap = 0
	}
	switch {
	case s.RushBurst == 0:
		s.RushBurst = DefaultRushBurst
	case s.RushBurst < 0:
		s.RushBurst = 0
	}
	s.RushSYNs = max(s.RushSYNs, 0)
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

// backoff is the wait after the n-th backed-off attempt, jittered with u
// uniform in [0, 1), and with a rush at most half of it (the overlap
// argument above).
func (s Schedule) backoff(n int, u float64) time.Duration {
	d := s.jittered(s.delay(n), u)
	if s.Rush > 0 {
		d = min(d, s.Rush/2)
	}
	return d
}

// jittered spreads d by Jitter with u uniform in [0, 1).
func (s Schedule) jittered(d time.Duration, u float64) time.Duration {
	return time.Duration(float64(d) * (1 + s.Jitter*(2*u-1)))
}
