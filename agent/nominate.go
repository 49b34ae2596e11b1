package agent

import (
	"errors"
	"net"
	"time"

	"github.com/icetcp/icetcp/candidate"
)

func isRelayed(p *pair) bool {
	return p.local.Type == candidate.Relay || p.remote.Type == candidate.Relay || p.viaPeerRelay
}

// nominate sends USE-CANDIDATE on p (regular nomination, RFC 8445 §8.1.1).
func (a *Agent) nominate(p *pair, now time.Time) {
	a.sel.nominating = p
	p.state = stateInProgress
	p.deadline = now.Add(a.to.nomination())
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
	a.sel.selectedAt = now
	agreed := a.agreed()
	if s := a.cfg.resume; s != nil {
		a.sel.conn = s.c // an ICE restart: the session carries on here
	} else {
		a.sel.conn = &Conn{
			a: a, pc: p.pc, took: now.Sub(a.checkStart), maxFrame: frameSizeFor(agreed), eos: agreed.eos,
		}
		a.sel.conn.cur.Store(&connPath{pc: p.pc, local: p.local, remote: p.remote, path: pathOf(p)})
	}
	a.sel.conn.agent.Store(a)
	if agreed.session {
		a.startSession(p, now)
	}
	// While the session searches for a direct path, direct pairs go on.
	keep := func(q *pair) bool { return a.mv.searching(now) && q != nil && !isRelayed(q) }
	errOther := errors.New("agent: another pair was selected")
	for _, q := range a.cl.pairs {
		if q == p || keep(q) {
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
		// Connections without a pair yet may be the peer's direct checks.
		if pc != p.pc && !keep(pc.pair) && !(a.mv.searching(now) && pc.pair == nil) {
			a.closeOrPark(pc, errOther)
		}
	}
	if a.mv.searching(now) {
		a.releaseRelays() // only the selected relay is of use
		a.renominateAsMoves(now)
	} else {
		a.stopSTUN()
	}
	p.pc.eosMode.Store(agreed.eos)
	keepAlive(p.pc.c, a.cfg.ConsentInterval)
	a.sel.releaseAt = now.Add(a.to.release())
	if p.pc.answered.Load() {
		a.peerValidated(now)
	}
	a.consent = consentState{last: now, next: now.Add(a.consentInterval())}
	if !a.role.controlling {
		// Our own check on the nominated pair, at once: a standard
		// controlling agent waits for it, and it starts consent.
		a.sendConsent(now)
	}
	a.setState(StateConnected, now)
	st := p.stats()
	st.Selected = true
	if a.cfg.resume != nil {
		a.announceMove(p, true, now)
	} else {
		a.events.emit(Event{Type: EventSelected, Time: now, Pair: &st})
	}
	a.tr.trace(TraceEvent{Kind: TraceSelected, Time: now, Pair: &st, RTT: a.sel.conn.took, Attempts: p.punchAttempts})
	a.life.result <- connectResult{conn: a.sel.conn}
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
func (a *Agent) peerValidated(now time.Time) {
	if a.sel.conn != nil {
		a.sel.releaseAt = now
		a.release(now)
	}
}

// release closes what only the checks needed: listeners, connections
// accepted since the selection, the Mux registration, signaling. An idle
// connected agent then runs two goroutines: its loop and the connection's
// reader. Until then the peer's bye still arrives: a peer that could not
// select our pair after all (its connection broke before its credentials
// came) says so, and we fail at once with its reason.
func (a *Agent) release(now time.Time) {
	if a.sel.released || a.mv.searching(now) {
		return // the search needs them; endSearch releases
	}
	a.sel.released = true
	a.stopSignaling()
	a.cl.byKey, a.cl.triggered = nil, nil // no pair is added any more
	a.closeListeners()
	a.releaseRelays()
	if a.cfg.Mux != nil {
		a.cfg.Mux.unregister(a.creds.ufrag, a)
	}
	for pc := range a.conns {
		if pc != a.sel.pair.pc && !a.isDraining(pc) {
			a.closeOrPark(pc, errors.New("agent: another pair was selected"))
		}
	}
}

// closeOrPark closes a connection the selection left unused, or parks it:
// open, idle and unchecked until the agent ends. A standard agent may read
// all the connections to one of its passive candidates as one socket: pion
// (ice/v2 v2.3.38, tcp_packet_conn.go startReading) hands the first EOF of
// any of them to the candidate's reader, which stops, and with it the
// selected pair's incoming data, when a redundant connection we opened to
// that candidate (a relayed check, another host's) is closed. So toward a
// standard agent such connections stay open; the peer closes them (or
// the agent's end does). icetcp peers, and connections the peer opened,
// are closed at once.
func (a *Agent) closeOrPark(pc *pconn, err error) {
	if pc.inbound || pc.pair == nil || pc.pair.remote.TCPType != candidate.Passive || a.agreed().eos {
		pc.close(err)
		return
	}
	if !pc.parked.Swap(true) {
		pc.endChecks()
		a.log.Debugf("parked the connection to %s (%s): a standard agent's passive candidate may end with its close", pc.remote, pc.local.Type)
	}
}

// afterSelection runs the selected connection's timers.
func (a *Agent) afterSelection(now time.Time, soon func(time.Time)) {
	if !a.sel.released {
		if !now.Before(a.sel.releaseAt) {
			a.release(now)
		} else {
			soon(a.sel.releaseAt)
		}
	}
	a.consentTick(now, soon)
	if a.mv.on && a.state == StateConnected {
		a.searchTick(now, soon)
		a.drainTick(now, soon)
	}
}

// keepAlive turns on TCP keepalive on the selected connection, so that a
// vanished host is noticed even when consent checks stopped (after the
// peer's FIN).
func keepAlive(c net.Conn, interval time.Duration) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: interval, Interval: interval, Count: 3})
	}
}
