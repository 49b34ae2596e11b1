package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/natcheck"
	"github.com/icetcp/icetcp/signaling"
)

// The fallback policy, top to bottom: which direct pairs are not tried
// at all (the NAT classes rule them out), in which order two punches
// start, how nomination travels, how long a working relayed pair waits
// for a direct one, and when an agent with nothing left gives up. The
// loop (tick) asks; the checks (checks.go) and the punch (punch.go,
// package tcpso) do.
//
// Each wait is named in timeouts; today all but the likely punch's come
// from Config.CheckTimeout.

// timeouts are the policy's durations, fixed at New. They all derive
// from one value (a struct of five equal durations was 32 bytes more in
// every agent of a 10,000-session Mux).
type timeouts struct{ base time.Duration }

func newTimeouts(cfg Config) timeouts { return timeouts{base: cfg.CheckTimeout} }

// check bounds one check: its connect or punch plus its STUN transaction;
// a pair tried again after a failure (relayed, or a connection closed
// before the answer) gets as long from its first try.
func (t timeouts) check() time.Duration { return t.base }

// nomination bounds a nominating check of regular nomination (RFC 8445
// §8.1.1) before the controlling agent nominates again.
func (t timeouts) nomination() time.Duration { return t.base }

// release is how long after selection our listeners stay open for a peer
// that has not checked the selected connection itself yet (a standard
// agent validating it through them).
func (t timeouts) release() time.Duration { return t.base }

// quiet is how long a standard peer may stay silent while we have nothing
// left to try, before we give up (icetcp peers say when they are done
// instead).
func (t timeouts) quiet() time.Duration { return t.base }

// likelyPunch caps the wait a punch both NAT classes call likely gets
// before a working relayed pair wins.
func (t timeouts) likelyPunch() time.Duration { return t.base }

// Which pairs are tried.

// punchVerdict judges a pair by both NAT classes: only a host S-O to a
// server-reflexive S-O pair is a NAT traversal the classes can judge.
func (a *Agent) punchVerdict(p *pair) (natcheck.Viability, string) {
	if v, why, ok := a.predictVerdict(p); ok {
		return v, why
	}
	if p.local.TCPType == candidate.Active && p.remote.TCPType == candidate.Passive && p.remote.Type == candidate.ServerReflexive && a.nat.haveRemote {
		return natcheck.PassiveReachable(a.nat.remote) // the peer's filtering decides (predict.go)
	}
	if !a.nat.haveLocal || !a.nat.haveRemote || p.local.TCPType != candidate.SO || p.remote.Type != candidate.ServerReflexive {
		return natcheck.ViabilityUnknown, ""
	}
	return a.plainVerdict(natcheck.SimultaneousOpenViable(a.nat.local, a.nat.remote))
}

// errHopeless fails a punch that the NAT classes rule out.
var errHopeless = errors.New("agent: NAT classes rule out simultaneous open")

// judgePunches fails every S-O pair both classes rule out, in flight or
// not, unless AwaitDirect asks to behave as if there were no classes.
func (a *Agent) judgePunches(now time.Time) {
	if a.cfg.AwaitDirect || a.sel.pair != nil {
		return
	}
	for _, p := range a.cl.pairs {
		if p.state == stateSucceeded || p.state == stateFailed || p.pc != nil {
			continue // a pair that connected is judged by its check, not by classes
		}
		if v, why := a.punchVerdict(p); v == natcheck.Unlikely {
			a.failPair(p, fmt.Errorf("%w: %s", errHopeless, why), now)
		}
	}
}

// punchOrderDelay is how much later the side behind a silently dropping
// NAT sends its first SYN when the peer's NAT answers RST: the first SYN
// to reach an RST-answering NAT is then never the peer's (it would be
// refused and cost a retry), while an early SYN into a dropping NAT only
// waits. Measured in the lab: both orders connect on the first attempt,
// this one with fewer SYNs.
const punchOrderDelay = 5 * time.Millisecond

func (a *Agent) punchDelay(p *pair) time.Duration {
	if p.local.TCPType != candidate.SO || !a.nat.haveLocal || !a.nat.haveRemote {
		return 0
	}
	if a.nat.local.InboundSYN == natcheck.SYNDropped && a.nat.remote.InboundSYN == natcheck.SYNRefused {
		return punchOrderDelay
	}
	return 0
}

// How nomination travels.

// nominateWithCheck reports whether a check on p carries USE-CANDIDATE
// right away: both agents agreed to it (icetcp-nominate), we control, and
// p is a direct pair (a relayed pair waits for the direct ones). The peer
// selects the first such check it answers, and we select on that answer
// only, so both sides pick the same pair even when several checks carry
// the flag.
func (a *Agent) nominateWithCheck(p *pair) bool {
	return a.role.controlling && a.agreed().nominate && !isRelayed(p)
}

// awaitsNomination reports a nominating check to an icetcp peer that
// must not time out: the peer may have committed to the pair when it
// answered (onRequest), and its answer, late on a loaded host, still
// arrives over the open TCP connection. Closing the connection would
// leave the peer with a selection we do not share. The check ends with
// its answer, an error, or the connection's end; the connect timeout
// bounds the wait, and a peer that committed elsewhere answers there.
func (a *Agent) awaitsNomination(p *pair) bool {
	return p.tx != nil && p.tx.useCandidate && p.tx.controlling && a.agreed().nominate && p.pc != nil && !p.pc.closed()
}

// When a working relayed pair wins.

// nominationTick runs regular nomination (RFC 8445 §8.1.1): the controlling
// agent picks the best valid pair once nothing better can still succeed,
// or once it has waited long enough for it.
func (a *Agent) nominationTick(now time.Time, soon func(time.Time)) {
	if !a.role.controlling || a.sel.nominating != nil || a.sel.pair != nil {
		return
	}
	best := a.cl.bestValid()
	if best == nil {
		return
	}
	if isRelayed(best) && a.cfg.NominationWait == 0 {
		if due := a.relayDue(best, now); now.Before(due) {
			soon(due)
			return
		}
		a.nominate(best, now)
		return
	}
	wait := a.sel.firstValid.Add(a.nominationWait(best))
	// With an explicit wait, better pairs may also be ones whose candidates
	// have not arrived yet.
	morePairs := a.cfg.NominationWait > 0 && !a.peer.eoc
	if (!a.cl.higherPending(best) && !morePairs) || !now.Before(wait) {
		a.nominate(best, now)
	} else {
		soon(wait)
	}
}

func (a *Agent) nominationWait(first *pair) time.Duration {
	if a.cfg.NominationWait > 0 {
		return a.cfg.NominationWait
	}
	if !isRelayed(first) {
		return 0
	}
	return min(max(2*first.rtt, 20*time.Millisecond), 500*time.Millisecond)
}

// farFuture stands for "not until something happens": every event runs
// the tick again.
var farFuture = time.Unix(1<<62, 0)

// minRelayGrace is the least a running direct pair the NAT classes cannot
// judge is given after the relayed pair worked. Three round trips are
// nothing on a short path, and a session that goes to the relay stays
// there: a scheduler hiccup on a loaded host must not decide it. With
// 50 ms, one punch in 80 at 0 ms (a drop NAT's class comes only after its
// one-second probe) lost to the relay in CI; above 33 ms of RTT the floor
// does not apply.
const minRelayGrace = 100 * time.Millisecond

// sessionHoldFloor is the least hold of sessionHold: on a short path a
// punch and the relay validate within a scheduler tick of each other.
const sessionHoldFloor = 50 * time.Millisecond

// sessionHold is when a relayed pair may be nominated with the session
// layer on: at once, unless a punch that the NAT classes do not rule out
// is crossing right now. That one gets two round trips (at least
// sessionHoldFloor) from the relay's validation or its first SYN,
// whichever is later: a session would move to it moments later anyway,
// and starting on the relay then costs an allocation and a move for
// nothing. Anything slower is the upgrade's business (move.go).
func (a *Agent) sessionHold(best *pair, now time.Time) time.Time {
	hold := min(max(2*max(best.rtt, a.punch.rtt), sessionHoldFloor), 250*time.Millisecond)
	due := now
	for _, q := range a.cl.pairs {
		if isRelayed(q) || q.local.TCPType != candidate.SO || q.state != stateInProgress {
			continue
		}
		if v, _ := a.punchVerdict(q); v == natcheck.Unlikely {
			continue
		}
		start := best.validAt
		if at, ok := a.sendingSince(q); ok && at.After(start) {
			start = at
		}
		if latest := best.validAt.Add(hold); start.After(latest) {
			start = latest // a punch's later attempts extend nothing
		}
		if until := start.Add(hold); until.After(due) {
			due = until
		}
	}
	return due
}

// relayDue says when a valid relayed pair may be nominated: once no direct
// pair can still win. A direct pair still running wins only if it can
// finish soon: a simultaneous open both sides' NAT classes call likely is
// given its punch, anything else (a SYN into the peer's private network, a
// punch the classes cannot judge) a grace of a few round trips after the
// relayed pair worked. With AwaitDirect, every direct pair must have
// failed, as without NAT classes.
func (a *Agent) relayDue(best *pair, now time.Time) time.Time {
	if a.agreed().session && !a.cfg.AwaitDirect {
		// The session moves to a direct pair when one validates (move.go):
		// the relay need not wait for it, only for both sides' candidates,
		// so that the search has them all even if the application closes
		// the signaling channel once connected.
		if !a.peer.eoc || a.g.pending > 0 {
			return farFuture
		}
		return a.sessionHold(best, now)
	}
	if a.cfg.AwaitDirect {
		if a.directPending() || !a.peer.eoc || a.g.pending > 0 || a.predictPending(now) {
			return farFuture
		}
		return now
	}
	rtt := max(best.rtt, a.punch.rtt)
	graceFor := min(max(3*rtt, minRelayGrace), 2*time.Second)
	grace := best.validAt.Add(graceFor)
	due := time.Time{}
	later := func(t time.Time) {
		if t.After(due) {
			due = t
		}
	}
	if !a.peer.eoc {
		later(grace) // more candidates may come
	}
	if until, ok := a.predictUntil(now); ok {
		later(until) // a port prediction may still add a pair (predict.go)
	}
	for _, q := range a.cl.pairs {
		if isRelayed(q) || q.state == stateSucceeded || q.state == stateFailed {
			continue
		}
		if until, ok := a.likelyUntil(q, rtt, now); ok {
			later(until)
			continue
		}
		later(grace)
		if q.local.TCPType == candidate.SO && q.state == stateInProgress {
			// A punch the classes cannot judge gets its grace from its
			// first SYN too: on a busy host a punch that had not sent yet
			// lost to a relay that happened to validate first (CI: one
			// eim-remap × preserve-rst trial in 80 at 0 ms, classes with
			// an unknown inbound SYN). Until it sends, it counts as about
			// to; its check's deadline bounds it.
			start := now
			if at, ok := a.sendingSince(q); ok {
				start = at
			}
			later(start.Add(graceFor))
		}
	}
	if due.IsZero() {
		return now
	}
	return due
}

// directPending reports a direct pair that may still succeed.
func (a *Agent) directPending() bool {
	for _, q := range a.cl.pairs {
		if !isRelayed(q) && q.state != stateSucceeded && q.state != stateFailed {
			return true
		}
	}
	return false
}

// likelyUntil reports whether the direct pair q is likely to succeed, and
// until when it deserves a wait: a simultaneous open both classes call
// likely gets its punch, the first attempts of which decide nearly every
// success (DCUtR: 97.6 % on the first). The wait, max(6 RTTs, 1 s), counts
// from the punch's first SYN (tcpso.Punch.OnStart), not from the check's
// start: on a busy host the punching goroutine can wait for a CPU, and a
// punch that had not sent yet lost to the relay's cap (issue 7: one trial
// in each 0 ms lab run with a CPU-heavy job beside it). Until its first
// SYN leaves, a punch is treated as not started, like a pair still
// waiting; the check's deadline bounds it all.
//
// What it costs a pair that will never connect, which natcheck cannot
// tell from a likely one (two no-simopen NATs: crossing SYNs dropped,
// which looks like a silent NAT): the time between the check's start and
// its first SYN, normally well under a millisecond (5 ms when
// punchOrderDelay applies), on top of the second it always paid.
func (a *Agent) likelyUntil(q *pair, rtt time.Duration, now time.Time) (time.Time, bool) {
	if v, _ := a.punchVerdict(q); v != natcheck.Likely {
		return time.Time{}, false
	}
	start := now // not started, or not sending yet
	if at, ok := a.sendingSince(q); ok && q.state == stateInProgress {
		start = at
		if at.Before(q.started) {
			start = q.started
		}
	}
	return start.Add(min(max(6*rtt, time.Second), a.to.likelyPunch())), true
}

// When to give up.

// failureTick fails the agent when the connect timeout passed, or when
// nothing is left to try and the peer has been quiet for a check timeout.
func (a *Agent) failureTick(now time.Time, soon func(time.Time)) {
	deadline := a.checkStart.Add(a.cfg.ConnectTimeout)
	if !now.Before(deadline) {
		a.fail(StateFailed, a.failure("no pair selected within "+a.cfg.ConnectTimeout.String(), context.DeadlineExceeded), now)
		return
	}
	soon(deadline)
	// Nothing left to try on our side: wait for the peer's checks (it may
	// still reach our passive candidates). An icetcp peer says when it is
	// done too; anything else, until it has been quiet for a check
	// timeout.
	if a.peer.eoc && a.peer.ufrag != "" && a.g.pending == 0 && !a.cl.pending() && a.cl.bestValid() == nil && len(a.cl.triggered) == 0 &&
		!a.predictPending(now) {
		if !a.peerCanCheck() {
			a.fail(StateFailed, a.failure("no candidate pair could be formed", ErrNoPairs), now)
			return
		}
		if a.agreed().done {
			if !a.sig.doneSent {
				a.sig.doneSent = true
				a.sig.out.send(signaling.Message{Type: signaling.TypeChecksDone})
			}
			if a.peer.done && !a.cl.inProgress() {
				reason := "no pair worked on either side"
				if f := a.cl.failures(); len(f) > 0 {
					reason = summarize(f)
				}
				a.fail(StateFailed, a.failure(reason, nil), now)
			}
			return
		}
		idle := a.lastActivity.Add(a.to.quiet())
		if !now.Before(idle) {
			reason := summarize(a.cl.failures())
			var cause error
			if len(a.cl.pairs) == 0 {
				reason, cause = "no candidate pair could be formed", ErrNoPairs
			}
			a.fail(StateFailed, a.failure(reason, cause), now)
			return
		}
		soon(idle)
	}
}

// peerCanCheck reports whether either side forms a pair it checks: one
// of ours, or one of the peer's active or S-O candidates that pairs with
// one of ours (RFC 6544 §6.2; its passive candidates only answer).
// Without one, nothing can ever connect.
func (a *Agent) peerCanCheck() bool {
	if len(a.cl.pairs) > 0 {
		return true
	}
	for _, r := range a.peer.cands {
		if r.TCPType == candidate.Passive {
			continue
		}
		for _, l := range a.g.locals {
			if candidate.CanPair(r, l) {
				return true
			}
		}
	}
	return false
}
