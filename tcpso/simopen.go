package tcpso

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pion/logging"
)

// Schedule defaults, used for zero fields. Ten attempts with back-off from
// 100 ms to 1 s cover about 12 s of punching when every attempt is refused at
// once, and up to about 27 s when every SYN goes unanswered; DCUtR data shows
// nearly all successes on the first attempt, so the tail is for slow
// signalling, not for luck.
const (
	DefaultAttempts       = 10
	DefaultInterval       = 100 * time.Millisecond
	DefaultMaxInterval    = time.Second
	DefaultAttemptTimeout = 2 * time.Second
)

// Schedule is the retry schedule of a simultaneous open. Zero fields take
// the Default* values above.
type Schedule struct {
	Attempts    int           // connect attempts at most; 0: DefaultAttempts
	Interval    time.Duration // wait after a failed attempt, doubled each time up to MaxInterval; 0: DefaultInterval
	MaxInterval time.Duration // 0: DefaultMaxInterval (raised to Interval if smaller)
	// AttemptTimeout is how long one connect() may wait for an answer; the
	// kernel retransmits the SYN inside it (after 1 s, then 3 s on Linux).
	// 0: DefaultAttemptTimeout.
	AttemptTimeout time.Duration
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
	return s
}

// delay is the wait after the n-th failed attempt (n counts from 1):
// Interval, 2×Interval, 4×Interval, … capped at MaxInterval.
func (s Schedule) delay(n int) time.Duration {
	d := s.Interval
	for i := 1; i < n && d < s.MaxInterval; i++ {
		d *= 2
	}
	return min(d, s.MaxInterval)
}

// Punch describes one simultaneous-open attempt.
type Punch struct {
	Local, Remote netip.AddrPort // Local must have a fixed port (the S-O candidate's base)
	// Start: zero starts now; otherwise the first SYN leaves at Start
	// (synchronised start, DCUtR style). A Start in the past starts now.
	Start    time.Time
	Schedule Schedule
	// PrimeTTL: 0 is off. Otherwise the first SYN of each attempt goes out
	// with this IP TTL (hop limit for IPv6), opening our own NAT's mapping
	// without reaching the far NAT, which would answer RST; the TTL is
	// restored for retransmissions and the handshake. Linux only; elsewhere
	// ignored with a log line. Valid values are 1..255.
	PrimeTTL int
	// LoggerFactory: nil means logging.NewDefaultLoggerFactory(); scope
	// "icetcp-tcpso".
	LoggerFactory logging.LoggerFactory
}

// dialFunc is one connect attempt; a seam so the retry loop can be tested
// with a fake network under testing/synctest.
type dialFunc func(ctx context.Context, local, remote netip.AddrPort, primeTTL int) (*net.TCPConn, error)

func dialAttempt(ctx context.Context, local, remote netip.AddrPort, primeTTL int) (*net.TCPConn, error) {
	if primeTTL > 0 {
		return dialPrimed(ctx, local, remote, primeTTL)
	}
	return Dial(ctx, local, remote)
}

// SimultaneousOpen connects from p.Local to p.Remote, retrying until a
// connection is established, ctx ends or the attempts are spent.
// Connection refused (RST), host/network unreachable, EADDRNOTAVAIL/
// EADDRINUSE (4-tuple still in TIME_WAIT or taken by an accepted connection)
// and a timed-out attempt all mean "try again"; any other error ends the
// punch at once. When it gives up the error is an *OpenError.
//
// If the caller also listens on p.Local (RFC 6544 §7.2), the peer's SYN may
// be accepted there instead, and from then on every attempt here fails with
// EADDRNOTAVAIL: the caller should cancel ctx when its listener yields the
// connection.
func SimultaneousOpen(ctx context.Context, p Punch) (*net.TCPConn, error) {
	return simultaneousOpen(ctx, p, dialAttempt)
}

func simultaneousOpen(ctx context.Context, p Punch, dial dialFunc) (*net.TCPConn, error) {
	p.Local, p.Remote = unmap(p.Local), unmap(p.Remote)
	if p.Local.Port() == 0 {
		return nil, fmt.Errorf("tcpso: simultaneous open %s->%s: local port must be fixed", p.Local, p.Remote)
	}
	if p.PrimeTTL < 0 || p.PrimeTTL > 255 {
		return nil, fmt.Errorf("tcpso: simultaneous open %s->%s: PrimeTTL %d out of range 0..255", p.Local, p.Remote, p.PrimeTTL)
	}
	lf := p.LoggerFactory
	if lf == nil {
		lf = logging.NewDefaultLoggerFactory()
	}
	log := lf.NewLogger("icetcp-tcpso")
	ttl := p.PrimeTTL
	if ttl != 0 && !primeSupported {
		log.Warnf("simultaneous open %s->%s: PrimeTTL is Linux only; ignored", p.Local, p.Remote)
		ttl = 0
	}

	s := p.Schedule.withDefaults()
	e := &OpenError{Local: p.Local, Remote: p.Remote}
	canceled := func() error {
		e.Canceled = true
		e.cause = context.Cause(ctx)
		return e
	}
	if !p.Start.IsZero() {
		if err := sleep(ctx, time.Until(p.Start)); err != nil {
			return nil, canceled()
		}
	}
	for n := 1; n <= s.Attempts; n++ {
		actx, cancel := context.WithTimeout(ctx, s.AttemptTimeout)
		c, err := dial(actx, p.Local, p.Remote, ttl)
		cancel()
		e.Attempts++
		if err == nil {
			log.Debugf("simultaneous open %s->%s: connected on attempt %d", p.Local, p.Remote, n)
			return c, nil
		}
		e.Last = err
		if ctx.Err() != nil {
			// The attempt was cut short by the caller, not answered by the
			// network: it is counted in Attempts but under no outcome.
			return nil, canceled()
		}
		o := classify(err)
		e.count(o)
		log.Debugf("simultaneous open %s->%s: attempt %d: %s", p.Local, p.Remote, n, causeText(err))
		if o == outcomeFatal {
			return nil, e
		}
		if n == s.Attempts {
			break
		}
		if err := sleep(ctx, s.delay(n)); err != nil {
			return nil, canceled()
		}
	}
	return nil, e
}

// sleep waits d or until ctx ends. A timer, not time.Sleep, so that
// cancellation is prompt and testing/synctest can drive it.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcome is what one failed connect attempt means for the punch.
type outcome int

const (
	outcomeRefused     outcome = iota + 1 // RST: the far NAT or host has no mapping yet
	outcomeUnreachable                    // ICMP unreachable, or no route
	outcomeTimedOut                       // no answer within AttemptTimeout
	outcomeBusy                           // EADDRINUSE/EADDRNOTAVAIL: 4-tuple in use, retry
	outcomeFatal                          // anything else: retrying will not help
)

func classify(err error) outcome {
	o, ok := classifyErrno(err)
	if ok && o != outcomeFatal {
		return o
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return outcomeTimedOut
	}
	return outcomeFatal
}
