package agent

import (
	"errors"
	"net"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
)

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

// relayDue says when a valid relayed pair may be nominated: once no direct
// pair can still win. A direct pair still running wins only if it can
// finish soon: a simultaneous open both sides' NAT classes call likely is
// given its punch, anything else (a SYN into the peer's private network, a
// punch the classes cannot judge) a grace of a few round trips after the
// relayed pair worked. With AwaitDirect, every direct pair must have
// failed, as without NAT classes.
func (a *Agent) relayDue(best *pair, now time.Time) time.Time {
	if a.cfg.AwaitDirect {
		if a.directPending() || !a.peer.eoc || a.g.pending > 0 {
			return farFuture
		}
		return now
	}
	rtt := max(best.rtt, a.punch.rtt)
	grace := best.validAt.Add(min(max(3*rtt, minRelayGrace), 2*time.Second))
	due := time.Time{}
	later := func(t time.Time) {
		if t.After(due) {
			due = t
		}
	}
	if !a.peer.eoc {
		later(grace) // more candidates may come
	}
	for _, q := range a.cl.pairs {
		if isRelayed(q) || q.state == stateSucceeded || q.state == stateFailed {
			continue
		}
		if until, ok := a.likelyUntil(q, rtt, now); ok {
			later(until)
		} else {
			later(grace)
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

// nominateWithCheck reports whether a check on p carries USE-CANDIDATE
// right away: both agents agreed to it (icetcp-nominate), we control, and
// p is a direct pair (a relayed pair waits for the direct ones). The peer
// selects the first such check it answers, and we select on that answer
// only, so both sides pick the same pair even when several checks carry
// the flag.
func (a *Agent) nominateWithCheck(p *pair) bool {
	return a.role.controlling && a.agreed().nominate && !isRelayed(p)
}

func isRelayed(p *pair) bool {
	return p.local.Type == candidate.Relay || p.remote.Type == candidate.Relay
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

// nominate sends USE-CANDIDATE on p (regular nomination, RFC 8445 §8.1.1).
func (a *Agent) nominate(p *pair, now time.Time) {
	a.sel.nominating = p
	p.state = stateInProgress
	p.deadline = now.Add(a.cfg.CheckTimeout)
	a.sendCheck(p, now, true)
}

// selectPair makes p the selected pair: every other check and connection
// stops, and Connect returns the Conn. Listeners stay open until the peer
// has checked the selected connection itself (release), since a standard
// agent may still be validating it through them.
func (a *Agent) selectPair(p *pair, now time.Time) {
	if a.sel.pair != nil {
		return
	}
	p.state = stateSucceeded
	p.nominated = true
	a.sel.pair = p
	errOther := errors.New("agent: another pair was selected")
	for _, q := range a.cl.pairs {
		if q == p {
			continue
		}
		if q.cancel != nil {
			q.cancel()
			q.cancel = nil
		}
		q.attempt++
		if q.state == stateInProgress || q.state == stateWaiting || q.state == stateFrozen {
			q.state = stateFailed
			q.err = errOther
		}
	}
	for pc := range a.conns {
		if pc != p.pc {
			pc.close(errOther)
		}
	}
	a.stopSTUN()
	agreed := a.agreed()
	p.pc.eosMode.Store(agreed.eos)
	keepAlive(p.pc.c, a.cfg.ConsentInterval)
	a.sel.conn = &Conn{
		a: a, pc: p.pc, local: p.local, remote: p.remote, path: pathOf(p), took: now.Sub(a.checkStart),
		maxFrame: frameSizeFor(agreed), eos: agreed.eos,
	}
	a.sel.releaseAt = now.Add(a.cfg.CheckTimeout)
	if p.pc.answered.Load() {
		a.peerValidated()
	}
	a.consent = consentState{last: now, next: now.Add(a.consentInterval()), tx: map[[stun.TransactionIDSize]byte]time.Time{}}
	if !a.role.controlling {
		// Our own check on the nominated pair, at once: a standard
		// controlling agent waits for it, and it starts consent.
		a.sendConsent(now)
	}
	a.setState(StateConnected, now)
	st := p.stats()
	st.Selected = true
	a.events.emit(Event{Type: EventSelected, Time: now, Pair: &st})
	a.result <- connectResult{conn: a.sel.conn}
}

// errNominatedLost ends an agent whose committed connection closed before
// it could be selected: the peer may have selected it on our answer, so
// no other pair may be chosen instead, and the peer is told (bye) rather
// than left waiting.
var errNominatedLost = errors.New("agent: the connection the peer nominated was lost before it could be selected")

// selectCommitted selects the connection we committed to, or fails both
// sides if it is gone.
func (a *Agent) selectCommitted(now time.Time) {
	pc := a.sel.committed
	if pc.closed() || pc.pair == nil || pc.pair.pc != pc {
		a.fail(StateFailed, a.failure(errNominatedLost.Error(), errNominatedLost), now)
		return
	}
	a.selectPair(pc.pair, now)
}

func pathOf(p *pair) string {
	if isRelayed(p) {
		return "relay"
	}
	return "direct"
}

// peerValidated records that the peer checked the selected connection
// itself: our listeners have done their job.
func (a *Agent) peerValidated() {
	if a.sel.conn != nil {
		a.release()
	}
}

// release closes what only the checks needed: listeners, connections
// accepted since the selection, the Mux registration, signaling. An idle
// connected agent then runs two goroutines: its loop and the connection's
// reader. Until then the peer's bye still arrives: a peer that could not
// select our pair after all (its connection broke before its credentials
// came) says so, and we fail at once with its reason.
func (a *Agent) release() {
	if a.sel.released {
		return
	}
	a.sel.released = true
	a.stopSignaling()
	a.cl.byKey, a.cl.triggered = nil, nil // no pair is added any more
	a.closeListeners()
	a.releaseRelays()
	if a.cfg.Mux != nil {
		a.cfg.Mux.unregister(a.localUfrag, a)
	}
	for pc := range a.conns {
		if pc != a.sel.pair.pc {
			pc.close(errors.New("agent: another pair was selected"))
		}
	}
}

// afterSelection runs the selected connection's timers.
func (a *Agent) afterSelection(now time.Time, soon func(time.Time)) {
	if !a.sel.released {
		if !now.Before(a.sel.releaseAt) {
			a.release()
		} else {
			soon(a.sel.releaseAt)
		}
	}
	a.consentTick(now, soon)
}

// keepAlive turns on TCP keepalive on the selected connection, so that a
// vanished host is noticed even when consent checks stopped (after the
// peer's FIN).
func keepAlive(c net.Conn, interval time.Duration) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: interval, Interval: interval, Count: 3})
	}
}
