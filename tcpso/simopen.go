package tcpso

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/wait"
)

// Punch describes one simultaneous open.
type Punch struct {
	Local, Remote netip.AddrPort // Local must have a fixed port (the S-O candidate's base)
	// Start: zero starts now; otherwise the first SYN leaves at Start
	// (synchronised start, DCUtR style). A Start in the past starts now.
	Start time.Time
	// Delay postpones the first SYN by this much after Start (after the
	// call when Start is zero): the knob for ordering two peers, e.g. the
	// peer behind a NAT that silently drops an early SYN goes second, so
	// that the first SYN to reach an RST-answering NAT is never the
	// peer's. Negative is treated as zero.
	Delay    time.Duration
	Schedule Schedule
	// PrimeTTL: 0 is off. Otherwise the first SYN of each attempt goes out
	// with this IP TTL (hop limit for IPv6), so that it opens our own NAT's
	// mapping without reaching the far NAT; see Trace for finding the
	// value. The router that drops it answers ICMP Time Exceeded, which on
	// Linux ends the connect: that outcome is "primed", and a full-TTL SYN
	// follows at once. Linux only; elsewhere ignored with a log line.
	// Valid values are 1..255.
	//
	// Measured in the NAT lab, priming does not widen the crossing window
	// between two Linux (netfilter) NATs: see the package documentation.
	PrimeTTL int
	// Listener, when not nil, is our listener on Local's port (RFC 6544
	// §7.2: an S-O candidate also accepts). A connection it accepts from
	// Remote while the punch runs ends the punch with that connection
	// (Result.Accepted): the peer's SYN reached our host before ours left,
	// and connecting would only meet EADDRNOTAVAIL. Someone must be
	// calling the Listener's Accept for that to happen.
	Listener *Listener
	// OnTry, when not nil, is called after every SYN with what it met,
	// from the punching goroutine; it must not block.
	OnTry func(Try)
	// OnStart, when not nil, is called once with the time the first SYN
	// leaves (after Start and Delay), just before it leaves, from the
	// punching goroutine; it must not block. A caller that gives the punch
	// a limited time (an ICE agent's relay fallback) can count it from
	// here rather than from the call, which a busy host may run late.
	OnStart func(time.Time)
	// LoggerFactory: nil means logging.NewDefaultLoggerFactory(); scope
	// "icetcp-tcpso".
	LoggerFactory logging.LoggerFactory
}

// dialFunc is one connect attempt; a seam so the retry loop can be tested
// with a fake network under testing/synctest.
type dialFunc func(ctx context.Context, local, remote netip.AddrPort, primeTTL int) (*net.TCPConn, error)

// env holds the punch's seams: the network and the randomness of the
// back-off.
type env struct {
	dial  dialFunc
	float func() float64 // uniform in [0, 1)
}

var realEnv = env{dial: dialAttempt, float: rand.Float64}

func dialAttempt(ctx context.Context, local, remote netip.AddrPort, primeTTL int) (*net.TCPConn, error) {
	if primeTTL > 0 || settleSupported {
		return dialPrimed(ctx, local, remote, primeTTL)
	}
	return Dial(ctx, local, remote)
}

// SimultaneousOpen connects from p.Local to p.Remote; it is Open without
// the statistics.
func SimultaneousOpen(ctx context.Context, p Punch) (*net.TCPConn, error) {
	r, err := Open(ctx, p)
	return r.Conn, err
}

// Open connects from p.Local to p.Remote by simultaneous open, retrying
// until a connection is established, ctx ends or the punch's deadline
// passes (ctx's deadline, or Schedule.Duration from the first SYN; see
// Schedule for how SYNs are paced). Connection refused (RST),
// host/network unreachable, ICMP time exceeded, EADDRNOTAVAIL/EADDRINUSE
// and a SYN that met silence all mean "not yet"; any other error ends the
// punch at once. When it gives up the error is an *OpenError.
func Open(ctx context.Context, p Punch) (Result, error) {
	return open(ctx, p, realEnv)
}

// A SYN of a rush that meets silence for rushLossFactor times the longest
// answer of the attempt so far (at least rushMinTimeout) is taken as lost
// and replaced, instead of waiting for the kernel's retransmission (1 s).
const (
	rushLossFactor = 4
	rushMinTimeout = 50 * time.Millisecond
)

// errAccepted cancels the punch's context when p.Listener accepted the
// peer's connection.
var errAccepted = errors.New("tcpso: the peer's SYN was accepted by the listener")

func open(ctx context.Context, p Punch, env env) (Result, error) {
	p.Local, p.Remote = unmap(p.Local), unmap(p.Remote)
	if p.Local.Port() == 0 {
		return Result{}, fmt.Errorf("tcpso: simultaneous open %s->%s: local port must be fixed", p.Local, p.Remote)
	}
	if p.PrimeTTL < 0 || p.PrimeTTL > 255 {
		return Result{}, fmt.Errorf("tcpso: simultaneous open %s->%s: PrimeTTL %d out of range 0..255", p.Local, p.Remote, p.PrimeTTL)
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
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var cl *claim
	if p.Listener != nil {
		var err error
		if cl, err = p.Listener.claim(p.Local, p.Remote, cancel); err != nil {
			return Result{}, fmt.Errorf("tcpso: simultaneous open %s->%s: %w", p.Local, p.Remote, err)
		}
		defer func() {
			if c := cl.release(); c != nil {
				c.Close() // delivered after we had our connection: cannot happen for one 4-tuple
			}
		}()
	}
	r := run{p: p, s: p.Schedule.withDefaults(), env: env, log: log, ctx: pctx, cl: cl,
		e: &OpenError{Local: p.Local, Remote: p.Remote}}
	return r.punch(ctx, ttl)
}

// run is one punch in progress, owned by the calling goroutine.
type run struct {
	p     Punch
	s     Schedule
	env   env
	log   logging.LeveledLogger
	ctx   context.Context // canceled by the caller, or by cl with errAccepted
	cl    *claim          // nil without a Listener
	e     *OpenError
	first time.Time // when the first SYN left
}

func (r *run) punch(parent context.Context, ttl int) (Result, error) {
	start := time.Now()
	if !r.p.Start.IsZero() {
		start = r.p.Start
	}
	if err := wait.Sleep(r.ctx, time.Until(start.Add(max(r.p.Delay, 0)))); err != nil {
		return r.stopped(parent, 0)
	}
	r.first = time.Now()
	if r.p.OnStart != nil {
		r.p.OnStart(r.first)
	}
	// The punch's own deadline: Duration from now, or DefaultDuration when
	// the caller gave none (a punch toward a peer that never answers must
	// end by itself).
	d := r.s.Duration
	if _, ok := r.ctx.Deadline(); !ok && d == 0 {
		d = DefaultDuration
	}
	if d > 0 {
		var cancel context.CancelFunc
		r.ctx, cancel = context.WithDeadline(r.ctx, r.first.Add(d))
		defer cancel()
	}
	backoffs := 0
	for n := 1; ; n++ {
		r.e.Attempts = n
		res, done, backoff, err := r.attempt(parent, n, ttl)
		if done {
			return res, err
		}
		if n == r.s.Attempts {
			break
		}
		if !backoff {
			continue
		}
		backoffs++
		if err := wait.Sleep(r.ctx, r.s.backoff(backoffs, r.env.float())); err != nil {
			return r.stopped(parent, n)
		}
	}
	if c := r.cl.release(); c != nil {
		return r.accepted(c, r.s.Attempts), nil
	}
	return Result{}, r.e
}

// attempt runs attempt n: its first SYN (primed when ttl > 0) and, while
// its rush lasts, a new SYN after every RST or ICMP error. done reports
// that the punch is over (with res or err); backoff that the next attempt
// must wait rather than start at once.
func (r *run) attempt(parent context.Context, n, ttl int) (res Result, done, backoff bool, err error) {
	begin := time.Now()
	syns := 0
	// answer is the longest an RST or ICMP error took in this attempt: the
	// round trip to the far NAT. Once known, a SYN unanswered for
	// rushLossFactor of it was lost, or its answer was.
	var answer time.Duration
	rushing := func() bool {
		return time.Since(begin) < r.s.Rush && (r.s.RushSYNs == 0 || syns < r.s.RushSYNs)
	}
	for {
		t := Try{Attempt: n, At: time.Since(r.first), Primed: ttl > 0}
		timeout := r.s.AttemptTimeout
		if answer > 0 && rushing() {
			timeout = min(timeout, max(rushLossFactor*answer, rushMinTimeout))
		}
		sent := time.Now()
		actx, cancel := context.WithTimeout(r.ctx, timeout)
		c, derr := r.env.dial(actx, r.p.Local, r.p.Remote, ttl)
		cancel()
		took := time.Since(sent)
		r.e.SYNs++
		syns++
		if derr == nil {
			t.Outcome = OutcomeConnected
			r.e.add(t)
			r.report(t)
			r.log.Debugf("simultaneous open %s->%s: connected on attempt %d (%d SYNs)", r.p.Local, r.p.Remote, n, r.e.SYNs)
			return Result{Conn: c, Attempts: n, SYNs: r.e.SYNs, Tries: r.e.Tries, Omitted: r.e.Omitted}, true, false, nil
		}
		r.e.Last = derr
		if r.over() {
			// Cut short by the caller, our listener's accept or the
			// punch's deadline, not answered by the network: recorded,
			// but under no count.
			t.Outcome, t.Err = OutcomeCanceled, derr
			r.e.add(t)
			r.report(t)
			res, err := r.stopped(parent, n)
			return res, true, false, err
		}
		t.Outcome, t.Err = classify(derr, ttl > 0), derr
		r.e.record(t)
		r.report(t)
		r.log.Debugf("simultaneous open %s->%s: attempt %d SYN %d: %s: %s", r.p.Local, r.p.Remote, n, syns, t.Outcome, causeText(derr))
		ttl = 0 // only an attempt's first SYN is primed
		switch t.Outcome {
		case OutcomePrimed:
			continue // our NAT has seen it: the full-TTL SYN goes now
		case OutcomeTimedOut:
			if answer > 0 && rushing() {
				continue // lost in the rush: the far NAT answered the SYNs before it
			}
			// Our NAT still holds this SYN's sequence number: replace it at
			// once (see Schedule), as a new attempt.
			return Result{}, false, false, nil
		case OutcomeRefused, OutcomeUnreachable:
			answer = max(answer, took)
			if !rushing() {
				return Result{}, false, true, nil
			}
			if syns < r.s.RushBurst {
				continue // the burst: at once
			}
			// Paced: the next SYN leaves a jittered gap after this one
			// left, at once if its answer took longer (see Schedule).
			if err := wait.Sleep(r.ctx, r.s.jittered(r.s.RushGap, r.env.float())-took); err != nil {
				res, err := r.stopped(parent, n)
				return res, true, false, err
			}
		case OutcomeBusy:
			return Result{}, false, true, nil
		default:
			return Result{}, true, false, r.e
		}
	}
}

// over reports that the punch must stop: ctx ended, or its deadline passed
// by the clock. A context's timer may fire late on a busy host, and until
// it does every connect bounded by that deadline fails at once: without the
// clock the punch would spin, a SYN per turn (seen in the NAT lab under
// load: 25 attempts within 0.2 ms at a check's deadline).
func (r *run) over() bool {
	if r.ctx.Err() != nil {
		return true
	}
	dl, ok := r.ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

func (r *run) report(t Try) {
	if r.p.OnTry != nil {
		r.p.OnTry(t)
	}
}

// stopped ends a punch whose context ended during attempt n: with the
// connection our listener accepted, as canceled when the caller canceled
// ctx, or as expired when its deadline (ctx's or Schedule.Duration's)
// passed.
func (r *run) stopped(parent context.Context, n int) (Result, error) {
	if c := r.cl.release(); c != nil {
		return r.accepted(c, max(n, 1)), nil
	}
	if cause := context.Cause(parent); cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
		r.e.Canceled = true
		r.e.cause = cause
	} else {
		r.e.Expired = true
		r.e.cause = context.DeadlineExceeded
	}
	return Result{}, r.e
}

func (r *run) accepted(c *net.TCPConn, n int) Result {
	t := Try{Attempt: n, At: time.Since(r.first), Outcome: OutcomeConnected}
	r.e.add(t)
	r.report(t)
	r.log.Debugf("simultaneous open %s->%s: the peer's SYN was accepted during attempt %d", r.p.Local, r.p.Remote, n)
	return Result{Conn: c, Attempts: n, SYNs: r.e.SYNs, Accepted: true, Tries: r.e.Tries, Omitted: r.e.Omitted}
}

// classify names what a failed connect met. A time-exceeded answer is
// "primed" only for a SYN sent with a low TTL on purpose.
func classify(err error, primed bool) Outcome {
	var te *TimeExceededError
	if errors.As(err, &te) {
		if primed {
			return OutcomePrimed
		}
		return OutcomeUnreachable
	}
	o, ok := classifyErrno(err)
	if ok && o != OutcomeFatal {
		return o
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return OutcomeTimedOut
	}
	return OutcomeFatal
}

// TimeExceededError is an ICMP Time Exceeded answer to a SYN: the router
// From dropped it because its TTL (hop limit) ran out. It wraps the errno
// the kernel reported (EHOSTUNREACH on Linux).
type TimeExceededError struct {
	From  netip.Addr
	Errno error
}

func (e *TimeExceededError) Error() string {
	return fmt.Sprintf("ICMP time exceeded from %s", e.From)
}

func (e *TimeExceededError) Unwrap() error { return e.Errno }
