package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/tcpso"
)

var (
	errCheckTimeout = errors.New("agent: no response to the check in time")
	errConnLost     = errors.New("agent: connection lost during the check")
)

// tick does all work that is due at now and returns when it wants to run
// next: pacing (one new check per Ta), check deadlines, nomination,
// failure detection and consent freshness.
func (a *Agent) tick(now time.Time) time.Time {
	next := now.Add(time.Hour)
	soon := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	if a.state == StateFailed || a.state == StateClosed {
		return next
	}
	if a.selected != nil {
		a.consentTick(now, soon)
		return next
	}
	for _, p := range a.cl.pairs {
		if p.state == stateInProgress {
			if !now.Before(p.deadline) {
				a.failPair(p, errCheckTimeout)
			} else {
				soon(p.deadline)
			}
		}
	}
	punchOK, punchWhen := a.punchReady(now)
	if a.remoteUfrag != "" && a.state == StateChecking && punchOK && !a.punched {
		a.startPunches(now)
	} else if !punchOK && a.remoteUfrag != "" {
		soon(punchWhen)
	}
	// Until the synchronised start, S-O pairs without a connection wait.
	holdSO := func(p *pair) bool { return !punchOK && p.local.TCPType == candidate.SO && p.pc == nil }
	if a.remoteUfrag != "" && a.state == StateChecking {
		if due := a.lastCheck.Add(a.cfg.Pacing); !now.Before(due) {
			if p := a.cl.next(holdSO); p != nil {
				a.startCheck(p, now)
				a.lastCheck = now
				soon(now.Add(a.cfg.Pacing))
			}
		} else if len(a.cl.triggered) > 0 || a.cl.pending() {
			soon(due)
		}
	}
	if a.controlling && a.nominating == nil {
		if best := a.cl.bestValid(); best != nil {
			wait := a.firstValid.Add(a.nominationWait(best))
			if !a.cl.higherPending(best) || !now.Before(wait) {
				a.nominate(best, now)
			} else {
				soon(wait)
			}
		}
	}
	if a.selected == nil && !a.checkStart.IsZero() {
		deadline := a.checkStart.Add(a.cfg.ConnectTimeout)
		if !now.Before(deadline) {
			a.fail(StateFailed, a.failure("no pair selected within "+a.cfg.ConnectTimeout.String(), context.DeadlineExceeded))
			return next
		}
		soon(deadline)
		// Nothing left to try on our side: wait for the peer's checks (it may
		// still reach our passive candidates) until it has been quiet for a
		// check timeout.
		if a.remoteEOC && a.remoteUfrag != "" && !a.cl.pending() && a.cl.bestValid() == nil && len(a.cl.triggered) == 0 {
			idle := a.lastActivity.Add(a.cfg.CheckTimeout)
			if !now.Before(idle) {
				reason := summarize(a.cl.failures())
				var cause error
				if len(a.cl.pairs) == 0 {
					reason, cause = "no candidate pair could be formed", ErrNoPairs
				}
				a.fail(StateFailed, a.failure(reason, cause))
				return next
			}
			soon(idle)
		}
	}
	return next
}

func (a *Agent) failure(reason string, cause error) *FailedError {
	return &FailedError{Reason: reason, Checks: a.cl.failures(), Err: cause}
}

// startCheck begins p's check: over its connection if it has one, else by
// connecting (active) or punching (S-O) first.
func (a *Agent) startCheck(p *pair, now time.Time) {
	p.state = stateInProgress
	p.deadline = now.Add(a.cfg.CheckTimeout)
	p.err = nil
	a.lastActivity = now
	if p.pc != nil && !p.pc.closed() {
		a.sendCheck(p, now, false)
		return
	}
	p.pc = nil
	p.attempt++
	attempt := p.attempt
	ctx, cancel := context.WithDeadline(context.Background(), p.deadline)
	p.cancel = cancel
	local, remote := p.local, p.remote.Addr
	sched, primeTTL := a.cfg.Punch, a.cfg.PrimeTTL
	a.goTracked(func() {
		defer cancel()
		var c *net.TCPConn
		var err error
		switch local.TCPType {
		case candidate.Active:
			c, err = tcpso.Dial(ctx, netip.AddrPortFrom(local.Addr.Addr(), 0), remote)
		case candidate.SO:
			c, err = tcpso.SimultaneousOpen(ctx, tcpso.Punch{Local: local.Addr, Remote: remote, Schedule: sched, PrimeTTL: primeTTL})
		default:
			err = fmt.Errorf("agent: a %s candidate does not initiate checks", local.TCPType)
		}
		if !a.post(func() { a.onDialed(p, attempt, c, err) }) && c != nil {
			c.Close()
		}
	})
}

// onDialed takes the result of a connect or punch.
func (a *Agent) onDialed(p *pair, attempt uint64, c *net.TCPConn, err error) {
	if p.attempt != attempt || p.state != stateInProgress || p.pc != nil || a.selected != nil {
		if c != nil {
			c.Close()
		}
		return
	}
	p.cancel = nil
	if err != nil {
		a.failPair(p, err)
		return
	}
	pc := a.adopt(c, nil, false, p.local, nil)
	pc.pair = p
	p.pc = pc
	a.sendCheck(p, time.Now(), false)
}

// sendCheck sends a Binding request on p's connection.
func (a *Agent) sendCheck(p *pair, now time.Time, useCandidate bool) {
	pwd := a.remotePwd.Load()
	if pwd == nil || p.pc == nil {
		return
	}
	id := a.newTxID()
	m, err := a.request(p, *pwd, id, useCandidate)
	if err != nil {
		a.failPair(p, err)
		return
	}
	p.tx = &transaction{id: id, sent: now, useCandidate: useCandidate, controlling: a.controlling}
	a.writeAsync(p.pc, m)
}

// request builds a Binding request for p in our current role.
func (a *Agent) request(p *pair, remotePwd string, id [stun.TransactionIDSize]byte, useCandidate bool) (*stun.Message, error) {
	return buildRequest(checkParams{
		localUfrag: a.localUfrag, remoteUfrag: a.remoteUfrag, remotePwd: remotePwd,
		priority: prflxPriority(p.local), controlling: a.controlling, tiebreaker: a.tiebreaker,
		useCandidate: useCandidate,
	}, id)
}

// writeAsync sends m without blocking the loop behind application writes.
// After our CloseWrite nothing is sent (the peer's consent checks that
// were already in flight go unanswered; it stops checking on our FIN).
func (a *Agent) writeAsync(pc *pconn, m *stun.Message) {
	if !pc.startSTUNWrite() {
		return
	}
	a.goTracked(func() {
		defer pc.endSTUNWrite()
		if err := pc.writeSTUN(m); err != nil {
			pc.close(err)
		}
	})
}

// prflxPriority is the PRIORITY a check carries: the local candidate's
// priority with the peer-reflexive type preference (RFC 8445 §7.1.1).
func prflxPriority(local candidate.Candidate) uint32 {
	otherPref := uint16(local.Priority>>8) & 0x1fff
	return candidate.Priority(candidate.PeerReflexive, local.TCPType, otherPref, max(local.Component, 1))
}

// failPair records a failed check and closes its connection.
func (a *Agent) failPair(p *pair, err error) {
	if p.cancel != nil {
		p.cancel()
		p.cancel = nil
	}
	p.attempt++
	p.state = stateFailed
	p.err = err
	p.tx = nil
	if p.pc != nil {
		p.pc.close(&CheckError{Local: p.local, Remote: p.remote, Err: err})
		p.pc = nil
	}
	if p == a.nominating {
		a.nominating = nil
	}
	a.cl.unfreeze(p, false)
	a.log.Debugf("check %s -> %s failed: %v", addrOf(p.local), addrOf(p.remote), err)
}

// onSTUN handles an authenticated STUN message from a connection's reader.
func (a *Agent) onSTUN(pc *pconn, m *stun.Message) {
	if pc.closed() || a.state == StateFailed || a.state == StateClosed {
		return
	}
	a.lastActivity = time.Now()
	if a.checkStart.IsZero() {
		a.checkStart = a.lastActivity // the peer's check beat its credentials (a fast LAN)
	}
	if m.Type.Class == stun.ClassRequest {
		a.onRequest(pc, m)
		return
	}
	a.onResponse(pc, m)
}

func (a *Agent) onResponse(pc *pconn, m *stun.Message) {
	now := time.Now()
	if sent, ok := a.consentTx[m.TransactionID]; ok {
		delete(a.consentTx, m.TransactionID)
		if m.Type.Class == stun.ClassSuccessResponse {
			a.consentLast = now
			if p := a.selected; p != nil {
				p.rtt = now.Sub(sent)
			}
		}
		return
	}
	p := pc.pair
	if p == nil || p.tx == nil || p.tx.id != m.TransactionID {
		return // late or unknown: ignore (RFC 8445 §7.2.5.2.4)
	}
	tx := p.tx
	p.tx = nil
	if m.Type.Class == stun.ClassErrorResponse {
		switch code := errorCode(m); code {
		case stun.CodeRoleConflict:
			// RFC 8445 §7.2.5.1: switch role (unless already switched) and retry.
			if tx.controlling == a.controlling {
				a.switchRole()
			}
			p.state = stateWaiting
			a.cl.trigger(p)
		case stun.CodeUnauthorized:
			a.failPair(p, fmt.Errorf("%w: the peer answered 401", ErrUnauthenticated))
		default:
			a.failPair(p, fmt.Errorf("agent: peer answered error %d", code))
		}
		return
	}
	if mapped, err := mappedAddress(m); err == nil && mapped != addrPortOf(pc.c.LocalAddr()) {
		a.log.Debugf("check %s -> %s: mapped %s (behind a NAT)", addrOf(p.local), addrOf(p.remote), mapped)
	}
	p.rtt = now.Sub(tx.sent)
	if p.state != stateSucceeded {
		p.state = stateSucceeded
		if a.firstValid.IsZero() {
			a.firstValid = now
		}
		a.cl.unfreeze(p, true)
	}
	if tx.useCandidate && a.controlling {
		a.selectPair(p, now)
	}
}

// onRequest answers an authenticated check and runs the triggered-check
// and nomination logic (RFC 8445 §7.3).
func (a *Agent) onRequest(pc *pconn, m *stun.Message) {
	peerControlling, peerTB, err := requestRole(m)
	if err != nil {
		a.respondError(pc, m, stun.CodeBadRequest)
		return
	}
	if !a.roleKnown {
		a.controlling, a.roleKnown = !peerControlling, true
	} else if peerControlling == a.controlling {
		// RFC 8445 §7.3.1.1: the larger tie-breaker keeps controlling.
		if (a.controlling && a.tiebreaker >= peerTB) || (!a.controlling && a.tiebreaker < peerTB) {
			a.respondError(pc, m, stun.CodeRoleConflict)
			return
		}
		a.switchRole()
	}
	if err := a.respondSuccess(pc, m); err != nil {
		pc.close(err)
		return
	}
	if a.selected != nil {
		return // a consent check on the selected connection, or a late one
	}
	p := pc.pair
	if p == nil {
		prio, err := requestPriority(m)
		if err != nil {
			a.warn(err)
			return
		}
		if p = a.pairForInbound(pc, prio); p == nil {
			return
		}
	}
	switch p.state {
	case stateWaiting, stateFrozen, stateFailed:
		a.cl.trigger(p)
	case stateInProgress:
		if p.tx == nil && p.pc != nil {
			a.sendCheck(p, time.Now(), false) // the connection arrived while we were dialing
		}
	}
	// Nomination. RFC 8445 §7.3.1.5 has the controlled agent wait for its
	// own check on the pair; over TCP that check adds nothing: the request
	// arrived on an established connection (the handshake proved the path
	// both ways) and is signed with our password, which only the peer has.
	// Waiting would also deadlock: the controlling agent may already be
	// sending data, and our check's response would queue behind data
	// nobody reads until we select.
	if !a.controlling && useCandidate(m) {
		a.selectPair(p, time.Now())
	}
}

// pairForInbound finds or creates the pair an accepted connection belongs
// to (RFC 6544 §7.2): the remote is a signaled candidate when one matches
// (active ones by IP only, their port is ephemeral), else a new
// peer-reflexive candidate.
func (a *Agent) pairForInbound(pc *pconn, prio uint32) *pair {
	remoteType := candidate.Active
	if pc.local.TCPType == candidate.SO {
		remoteType = candidate.SO
	}
	var remote candidate.Candidate
	found := false
	for _, r := range a.remotes {
		if r.TCPType != remoteType {
			continue
		}
		if (remoteType == candidate.Active && r.Addr.Addr() == pc.remote.Addr()) || r.Addr == pc.remote {
			remote, found = r, true
			break
		}
	}
	if !found {
		remote = candidate.Candidate{
			Foundation: candidate.Foundation(candidate.PeerReflexive, pc.remote.Addr(), netip.Addr{}),
			Component:  1, Priority: prio, Addr: pc.remote, Type: candidate.PeerReflexive, TCPType: remoteType,
		}
		if len(a.remotes) >= maxRemoteCandidates {
			a.warn(fmt.Errorf("agent: more than %d remote candidates; check from %s dropped", maxRemoteCandidates, pc.remote))
			pc.close(errors.New("agent: too many remote candidates"))
			return nil
		}
		a.remotes = append(a.remotes, remote)
	}
	p, _ := a.cl.add(&pair{local: pc.local, remote: remote}, a.controlling)
	if p.pc != nil && p.pc != pc {
		if !p.pc.closed() && p.state == stateSucceeded {
			pc.close(errors.New("agent: pair already has a working connection"))
			return nil
		}
		p.pc.close(errors.New("agent: replaced by a newer connection"))
	}
	if p.cancel != nil { // a connect or punch for this pair is in flight: this connection wins
		p.cancel()
		p.cancel = nil
		p.attempt++
	}
	p.pc = pc
	pc.pair = p
	return p
}

func useCandidate(m *stun.Message) bool {
	_, err := m.Get(stun.AttrUseCandidate)
	return err == nil
}

func (a *Agent) respondSuccess(pc *pconn, req *stun.Message) error {
	resp, err := buildSuccess(req, pc.remote, a.localPwd)
	if err != nil {
		return err
	}
	a.writeAsync(pc, resp)
	return nil
}

func (a *Agent) respondError(pc *pconn, req *stun.Message, code stun.ErrorCode) {
	resp, err := buildError(req, code, a.localPwd)
	if err != nil {
		a.warn(err)
		return
	}
	a.writeAsync(pc, resp)
}

func (a *Agent) switchRole() {
	a.controlling = !a.controlling
	a.log.Infof("role conflict: now %s", a.role())
	a.cl.reprioritize(a.controlling)
	a.nominating = nil
}

func (a *Agent) nominationWait(first *pair) time.Duration {
	if a.cfg.NominationWait > 0 {
		return a.cfg.NominationWait
	}
	if first.local.Type != candidate.Relay && first.remote.Type != candidate.Relay {
		return 0
	}
	return min(max(2*first.rtt, 20*time.Millisecond), 500*time.Millisecond)
}

// nominate sends USE-CANDIDATE on p (regular nomination, RFC 8445 §8.1.1).
func (a *Agent) nominate(p *pair, now time.Time) {
	a.nominating = p
	p.state = stateInProgress
	p.deadline = now.Add(a.cfg.CheckTimeout)
	a.sendCheck(p, now, true)
}

// selectPair makes p the selected pair: every other connection and check
// stops, and Connect returns the Conn.
func (a *Agent) selectPair(p *pair, now time.Time) {
	if a.selected != nil {
		return
	}
	p.state = stateSucceeded
	p.nominated = true
	a.selected = p
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
			q.err = errors.New("agent: another pair was selected")
		}
	}
	for pc := range a.conns {
		if pc != p.pc {
			pc.close(errors.New("agent: another pair was selected"))
		}
	}
	a.closeListeners()
	a.stopSTUN()
	if a.cfg.Mux != nil {
		a.cfg.Mux.unregister(a.localUfrag, a)
	}
	path := "direct"
	if p.local.Type == candidate.Relay || p.remote.Type == candidate.Relay {
		path = "relay"
	}
	a.conn = &Conn{a: a, pc: p.pc, local: p.local, remote: p.remote, path: path, took: now.Sub(a.checkStart)}
	a.consentLast = now
	a.consentNext = now.Add(a.consentInterval())
	a.consentTx = map[[stun.TransactionIDSize]byte]time.Time{}
	a.setState(StateConnected)
	st := p.stats()
	st.Selected = true
	a.events.emit(Event{Type: EventSelected, Time: now, Pair: &st})
	a.result <- connectResult{conn: a.conn}
}

// consentTick sends consent checks and expires consent (RFC 7675 §5.1).
func (a *Agent) consentTick(now time.Time, soon func(time.Time)) {
	if a.consentOff || a.peerWriteEnded {
		return
	}
	if expiry := a.consentLast.Add(a.cfg.ConsentTimeout); !now.Before(expiry) {
		err := fmt.Errorf("%w: no answer for %v", ErrConsentExpired, a.cfg.ConsentTimeout)
		a.selected.pc.close(err)
		a.fail(StateFailed, err)
		return
	} else {
		soon(expiry)
	}
	if !now.Before(a.consentNext) {
		a.sendConsent(now)
		a.consentNext = now.Add(a.consentInterval())
	}
	soon(a.consentNext)
}

func (a *Agent) sendConsent(now time.Time) {
	p := a.selected
	pwd := a.remotePwd.Load()
	if pwd == nil || p.pc == nil {
		return
	}
	id := a.newTxID()
	m, err := a.request(p, *pwd, id, false)
	if err != nil {
		a.warn(err)
		return
	}
	for tid, sent := range a.consentTx { // forget transactions that can no longer matter
		if now.Sub(sent) > a.cfg.ConsentTimeout {
			delete(a.consentTx, tid)
		}
	}
	a.consentTx[id] = now
	a.writeAsync(p.pc, m)
}

// consentInterval is ConsentInterval randomised by ±20% (RFC 7675 §5.1).
func (a *Agent) consentInterval() time.Duration {
	id := a.newTxID()
	f := 0.8 + 0.4*float64(id[0])/255
	return time.Duration(float64(a.cfg.ConsentInterval) * f)
}

// causeWord names a check failure in one word for FailedError.Reason.
func causeWord(err error) string {
	var oe *tcpso.OpenError
	var ne net.Error
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return "unauthenticated"
	case errors.As(err, &oe):
		return oe.Reason()
	case errors.Is(err, errCheckTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case isRefused(err):
		return "refused"
	case errors.Is(err, errConnLost):
		return "connection lost"
	default:
		return "other"
	}
}
