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
	"github.com/icetcp/icetcp/internal/natcheck"
	"github.com/icetcp/icetcp/tcpso"
)

var (
	errCheckTimeout = errors.New("agent: no response to the check in time")
	errConnLost     = errors.New("agent: connection lost during the check")
)

// tick does all work that is due at now and returns when it wants to run
// next: triggered checks at once, one ordinary check per Ta, check
// deadlines, nomination, failure detection and consent freshness.
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
	if a.sel.pair != nil {
		a.afterSelection(now, soon)
		return next
	}
	a.runChecks(now, soon, a.state == StateChecking, nil)
	a.predictTick(now, soon)
	a.nominationTick(now, soon)
	if a.sel.pair == nil && !a.checkStart.IsZero() {
		a.failureTick(now, soon)
	}
	return next
}

// runChecks runs what is due of the checks: deadlines, triggered checks,
// punches and relayed pairs at once, one ordinary check per Ta. start
// false only runs the deadlines (the peer's credentials are not known, or
// not all of ours are out). Pairs for which skip returns true do not
// start (a session's search for a direct path passes over relayed pairs).
func (a *Agent) runChecks(now time.Time, soon func(time.Time), start bool, skip func(*pair) bool) {
	if skip == nil {
		skip = func(*pair) bool { return false }
	}
	for _, p := range a.cl.pairs {
		if p.state == stateInProgress {
			if !now.Before(p.deadline) {
				if !a.awaitsNomination(p) {
					a.failPair(p, errCheckTimeout, now)
				}
			} else {
				soon(p.deadline)
			}
		}
	}
	if !start || a.peer.ufrag == "" || !a.sig.credsOut {
		return
	}
	// Triggered checks answer a check of the peer: they go out at once,
	// not at the next Ta (an agent like pion nominates as soon as our
	// check arrives).
	for p := a.cl.nextTriggered(skip); p != nil; p = a.cl.nextTriggered(skip) {
		a.startCheck(p, now)
	}
	// Simultaneous opens start together as soon as they exist (see
	// punch.go), and relayed pairs, the fallback, run beside the direct
	// ones: neither waits behind the others for its Ta.
	for _, p := range a.cl.pairs {
		if (isRelayed(p) || p.local.TCPType == candidate.SO) && (p.state == stateWaiting || p.state == stateFrozen) && !skip(p) {
			if now.Before(p.notBefore) {
				soon(p.notBefore)
				continue
			}
			a.startCheck(p, now)
		}
	}
	// A pair that retries after a back-off waits for its time.
	later := func(p *pair) bool {
		if skip(p) {
			return true
		}
		if now.Before(p.notBefore) {
			soon(p.notBefore)
			return true
		}
		return false
	}
	if due := a.lastCheck.Add(a.cfg.Pacing); !now.Before(due) {
		if p := a.cl.next(later); p != nil {
			a.startCheck(p, now)
			a.lastCheck = now
			soon(now.Add(a.cfg.Pacing))
		}
	} else if a.cl.pending() {
		soon(due)
	}
}

func (a *Agent) failure(reason string, cause error) *FailedError {
	return &FailedError{Reason: reason, Checks: a.cl.failures(), Err: cause}
}

// startCheck begins p's check: over its connection if it has one, else by
// connecting (active) or punching (S-O) first.
func (a *Agent) startCheck(p *pair, now time.Time) {
	p.state = stateInProgress
	p.started = now
	if p.firstTry.IsZero() {
		p.firstTry = now
	}
	p.deadline = now.Add(a.to.check())
	p.err = nil
	a.lastActivity = now
	a.tr.pair(TraceCheckStarted, p, now, nil)
	if p.pc != nil && !p.pc.closed() {
		a.sendCheck(p, now, a.nominateWithCheck(p))
		return
	}
	p.pc = nil
	if v, why := a.punchVerdict(p); v == natcheck.Unlikely && !a.cfg.AwaitDirect {
		a.failPair(p, fmt.Errorf("%w: %s", errHopeless, why), now)
		return
	}
	p.attempt++
	attempt := p.attempt
	ctx, cancel := context.WithDeadline(a.ctx, p.deadline)
	p.cancel = cancel
	local, remote := p.local, p.remote.Addr
	punch := tcpso.Punch{Local: local.Addr, Remote: remote, Schedule: a.cfg.Punch, PrimeTTL: a.cfg.PrimeTTL,
		Delay: a.punchDelay(p), LoggerFactory: a.cfg.LoggerFactory, OnStart: a.punchStarted(p, attempt)}
	a.predictPunch(p, &punch)
	var rl *relay
	if local.Type == candidate.Relay {
		rl = a.g.relayOf(local)
	}
	a.goTracked(func() {
		defer cancel()
		var c net.Conn
		var attempts int
		var err error
		switch {
		case local.Type == candidate.Relay && local.TCPType == candidate.Active:
			c, err = a.relayConnect(ctx, rl, remote)
		case local.TCPType == candidate.Active:
			c, err = a.seams.net.Dial(ctx, netip.AddrPortFrom(local.Addr.Addr(), 0), remote)
		case local.TCPType == candidate.SO:
			c, attempts, err = a.seams.net.SimultaneousOpen(ctx, punch)
		default:
			err = fmt.Errorf("agent: a %s candidate does not initiate checks", local.TCPType)
		}
		if !a.post(func(now time.Time) { a.onDialed(p, attempt, c, attempts, err, now) }) && c != nil {
			c.Close()
		}
	})
}

// onDialed takes the result of a connect or punch.
func (a *Agent) onDialed(p *pair, attempt uint64, c net.Conn, attempts int, err error, now time.Time) {
	if p.attempt != attempt || p.state != stateInProgress || p.pc != nil || (a.sel.pair != nil && !a.mv.searching(now)) {
		if c != nil {
			c.Close()
		}
		return
	}
	p.cancel = nil
	if p.local.TCPType == candidate.SO {
		p.punchAttempts = attempts
		a.tr.pair(TracePunchFinished, p, now, err)
	}
	if err != nil {
		a.failPair(p, err, now)
		return
	}
	pc := a.adopt(c, nil, false, p.local, nil)
	pc.pair = p
	p.pc = pc
	p.punchAttempts = attempts
	a.sendCheck(p, now, a.nominateWithCheck(p))
}

// sendCheck sends a Binding request on p's connection.
func (a *Agent) sendCheck(p *pair, now time.Time, useCandidate bool) {
	pwd := a.remotePwd.Load()
	if pwd == nil || p.pc == nil {
		return
	}
	id := a.newTxID()
	move := useCandidate && a.sel.pair != nil
	m, err := a.request(p, *pwd, id, useCandidate, move)
	if err != nil {
		a.failPair(p, err, now)
		return
	}
	if useCandidate && a.sel.nominating == nil {
		a.sel.nominating = p
		a.tr.pair(TraceNominated, p, now, nil)
	}
	p.tx = &transaction{id: id, sent: now, useCandidate: useCandidate, move: move, controlling: a.role.controlling}
	a.count.checks++
	p.pc.sendSTUN(m)
}

// request builds a Binding request for p in our current role.
func (a *Agent) request(p *pair, remotePwd string, id [stun.TransactionIDSize]byte, useCandidate, move bool) (*stun.Message, error) {
	return buildRequest(checkParams{
		localUfrag: a.creds.ufrag, remoteUfrag: a.peer.ufrag, remotePwd: remotePwd,
		priority: prflxPriority(p.local), controlling: a.role.controlling, tiebreaker: a.creds.tiebreaker,
		useCandidate: useCandidate, move: move,
	}, id)
}

// prflxPriority is the PRIORITY a check carries: the local candidate's
// priority with the peer-reflexive type preference (RFC 8445 §7.1.1).
func prflxPriority(local candidate.Candidate) uint32 {
	otherPref := uint16(local.Priority>>8) & 0x1fff
	return candidate.Priority(candidate.PeerReflexive, local.TCPType, otherPref, max(local.Component, 1))
}

// failPair records a failed check and closes its connection.
func (a *Agent) failPair(p *pair, err error, now time.Time) {
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
	if p == a.sel.nominating {
		a.sel.nominating = nil
	}
	a.cl.unfreeze(p, false)
	a.log.Debugf("check %s -> %s failed: %v", addrOf(p.local), addrOf(p.remote), err)
	a.tr.pair(TraceCheckFailed, p, now, err)
	a.maybeRetry(p, err, now)
}

// Relayed pairs race with the peer's permissions: our connection to its
// relayed address arrives before the peer has installed a permission for
// our address, and the relay resets it (RFC 6062 §5.3). When the peer
// installs it depends on when our candidates reach it, which a slow
// rendezvous or a loaded host can delay by seconds. A direct connection
// that opened and then closed before the answer met a peer too busy to
// take it in time (a loaded media server's Mux closes what sent nothing
// within its first-message deadline). Either pair is tried again, with a
// back-off growing to a second, for as long as a check is given from its
// first try (CheckTimeout). A refused direct connect is not: it is a NAT
// or a closed port, not load.
const maxRetryBackoff = time.Second

func (a *Agent) maybeRetry(p *pair, err error, now time.Time) {
	var pe *PeerError
	switch {
	case p.local.TCPType == candidate.Passive || (a.sel.pair != nil && !a.mv.searching(now)):
		return
	case errors.Is(err, ErrUnauthenticated) || errors.As(err, &pe) || errors.Is(err, errCheckTimeout):
		return
	case isRelayed(p):
	case p.local.TCPType == candidate.Active && errors.Is(err, errConnLost):
	default:
		return
	}
	backoff := min(time.Duration(50<<min(p.retries+1, 8))*time.Millisecond, maxRetryBackoff)
	if next := now.Add(backoff); !next.Before(p.firstTry.Add(a.to.check())) {
		return
	}
	p.retries++
	p.state = stateWaiting
	p.notBefore = now.Add(backoff)
}

// onSTUN handles an authenticated STUN message from a connection's reader.
func (a *Agent) onSTUN(pc *pconn, m *stun.Message, now time.Time) {
	if pc.closed() || a.state == StateFailed || a.state == StateClosed {
		return
	}
	a.lastActivity = now
	if a.checkStart.IsZero() {
		a.checkStart = now // the peer's check beat its credentials (a fast LAN)
	}
	if m.Type.Class == stun.ClassRequest {
		a.onRequest(pc, m, now)
		return
	}
	a.onResponse(pc, m, now)
}

func (a *Agent) onResponse(pc *pconn, m *stun.Message, now time.Time) {
	if sent, ok := a.consent.answered(m.TransactionID); ok {
		if m.Type.Class == stun.ClassSuccessResponse {
			a.consent.last = now
			if p := a.sel.pair; p != nil {
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
		a.onErrorResponse(p, tx, m, now)
		return
	}
	if mapped, err := mappedAddress(m); err == nil && mapped != addrPortOf(pc.c.LocalAddr()) {
		a.log.Debugf("check %s -> %s: mapped %s (behind a NAT)", addrOf(p.local), addrOf(p.remote), mapped)
	}
	p.rtt = now.Sub(tx.sent)
	a.tr.pair(TraceCheckSucceeded, p, now, nil)
	validated := p.state != stateSucceeded
	if validated {
		p.state = stateSucceeded
		p.validAt = now
		if a.sel.firstValid.IsZero() {
			a.sel.firstValid = now
		}
		a.cl.unfreeze(p, true)
	}
	switch {
	case tx.useCandidate && a.role.controlling && a.sel.pair == nil:
		a.selectPair(p, now)
	case tx.useCandidate && a.role.controlling:
		if tx.move && a.mv.searching(now) && !isRelayed(p) {
			a.movePath(p, now)
		}
	case a.sel.nominating == p:
		a.sel.nominating = nil // a plain check answered; nomination decides again
	}
	// A direct pair validated and the session still rides the relay (had
	// this answer moved it, movePath marked the relay after it stopped
	// reading it): the move is a round trip or two away.
	if sp := a.sel.pair; validated && sp != nil && a.mv.on && isRelayed(sp) && !isRelayed(p) {
		sp.pc.markDirectValid()
		a.holdForMove(p)
	}
	if p.rechecks == 0 { // not in answer to our own rechecks: those follow the peer's checks
		a.recheckForNomination(p, pc, now)
	}
}

// recheckForNomination sends one more check on a validated pair when we
// are controlled by a standard agent that checks the same connection.
// pion/ice v2 nominates when a check arrives on a pair it has already
// validated, else only on its next tick (200 ms); our triggered check
// often reaches it before an answer it accepts (it checks several times
// at once and can take our first answer for another pair or drop it). So
// a check follows our first check's success, and each answer we give to a
// check of the peer on a pair we validated (a few times at most): one of
// them arrives right behind the answer that validates the pair for the
// peer.
func (a *Agent) recheckForNomination(p *pair, pc *pconn, now time.Time) {
	const maxRechecks = 3
	if a.role.controlling || a.sel.pair != nil || a.agreed().nominate || p.state != stateSucceeded ||
		p.tx != nil || p.rechecks >= maxRechecks || !pc.answered.Load() {
		return
	}
	p.rechecks++
	a.sendCheck(p, now, false)
}

func (a *Agent) onErrorResponse(p *pair, tx *transaction, m *stun.Message, now time.Time) {
	if p == a.sel.nominating {
		a.sel.nominating = nil
	}
	code, reason := errorCodeReason(m)
	switch code {
	case stun.CodeRoleConflict:
		a.count.conflicts++
		// RFC 8445 §7.2.5.1: switch role (unless already switched) and retry.
		if tx.controlling == a.role.controlling {
			a.switchRole(now)
		}
		p.state = stateWaiting
		a.cl.trigger(p)
	case stun.CodeUnauthorized:
		a.failPair(p, fmt.Errorf("%w: the peer answered 401", ErrUnauthenticated), now)
	default:
		a.failPair(p, &PeerError{Code: int(code), Reason: reason}, now)
	}
}

// onRequest answers an authenticated check and runs the triggered-check
// and nomination logic (RFC 8445 §7.3).
func (a *Agent) onRequest(pc *pconn, m *stun.Message, now time.Time) {
	peerControlling, peerTB, err := requestRole(m)
	if err != nil {
		a.respondError(pc, m, stun.CodeBadRequest, now)
		return
	}
	if !a.role.known {
		a.role.controlling, a.role.known = !peerControlling, true
		a.cl.reprioritize(a.role.controlling)
	} else if peerControlling == a.role.controlling {
		// RFC 8445 §7.3.1.1: the larger tie-breaker keeps controlling.
		if (a.role.controlling && a.creds.tiebreaker >= peerTB) || (!a.role.controlling && a.creds.tiebreaker < peerTB) {
			a.count.conflicts++
			a.respondError(pc, m, stun.CodeRoleConflict, now)
			return
		}
		a.switchRole(now)
	}
	nominated := useCandidate(m) && !a.role.controlling
	// While its session searches for a direct path, the peer nominates
	// one on top of the selected pair, and says so: a nomination without
	// the mark is a late one for the first selection.
	upgrade := nominated && isMove(m) && a.sel.pair != nil && a.mv.on && pc != a.sel.pair.pc
	if upgrade && !a.takesMove(now) {
		// A second move nomination right behind the one we took: the
		// peer nominated two pairs, and the answers, on two connections,
		// may reach it in the other order, so that each side would end
		// on the pair the other left. Refused, the peer moves where we
		// did (its other nomination succeeded).
		a.respondError(pc, m, stun.CodeBadRequest, now)
		return
	}
	// Our own search checks, and answers, go on beside the selected pair.
	search := upgrade || (a.sel.pair != nil && a.mv.searching(now) && pc != a.sel.pair.pc)
	if nominated && a.sel.committedElsewhere(pc) && !upgrade {
		// Only the connection we selected (or committed to before the
		// peer's credentials) may be confirmed as nominated: the peer
		// selects the first one we confirm.
		return
	}
	// The pair is found before the answer: an answer to USE-CANDIDATE is
	// a commitment, which needs the pair.
	p := pc.pair
	if p == nil && (a.sel.pair == nil || search) {
		prio, err := requestPriority(m)
		if err != nil {
			a.warn(err, now)
			return
		}
		if p = a.pairForInbound(pc, prio, now); p == nil {
			return
		}
	}
	if upgrade && p.pc != pc {
		return // not a connection we can move to: no commitment here
	}
	if err := a.respondSuccess(pc, m); err != nil {
		pc.close(err)
		return
	}
	// Which checks were answered, and when, is what an interop failure
	// needs (a standard peer that missed an answer fails the pair).
	a.log.Debugf("answered check %x from %s on %s (use-candidate %v)", m.TransactionID[:4], pc.remote, pc.local.Addr, useCandidate(m))
	if a.tr.on() {
		tp := p
		if tp == nil {
			tp = a.sel.pair // a consent check
		}
		if tp != nil {
			st := tp.stats()
			a.tr.trace(TraceEvent{Kind: TraceCheckAnswered, Time: now, Pair: &st, UseCandidate: useCandidate(m)})
		}
	}
	if a.sel.pair != nil && !search {
		if pc == a.sel.pair.pc {
			a.peerValidated(now) // the peer checked the selected connection itself
		}
		return // a consent check, or a late check on another connection
	}
	switch p.state {
	case stateWaiting, stateFrozen, stateFailed:
		a.cl.trigger(p)
	case stateSucceeded:
		a.recheckForNomination(p, pc, now)
	case stateInProgress:
		if p.tx == nil && p.pc != nil {
			a.sendCheck(p, now, a.nominateWithCheck(p)) // the connection arrived while we were dialing
		}
	}
	// Nomination. RFC 8445 §7.3.1.5 has the controlled agent wait for its
	// own check on the pair; over TCP that check adds nothing: the request
	// arrived on an established connection (the handshake proved the path
	// both ways) and is signed with our password, which only the peer has.
	// Waiting would also deadlock: the controlling agent may already be
	// sending data, and our check's response would queue behind data
	// nobody reads until we select. Our own check still follows at once
	// (selectPair), for peers that wait for it.
	if nominated && upgrade {
		a.tr.pair(TraceNominated, p, now, nil)
		a.movePath(p, now)
		return
	}
	if nominated {
		a.sel.committed = pc
		a.tr.pair(TraceNominated, p, now, nil)
		if a.peer.ufrag == "" {
			// The check overtook the peer's credentials: select when they
			// arrive, so that both sides know each other's extensions
			// and we can check and consent in return.
			return
		}
		a.selectPair(p, now)
	}
}

func useCandidate(m *stun.Message) bool {
	_, err := m.Get(stun.AttrUseCandidate)
	return err == nil
}

// respondSuccess answers req; the peer now knows the path works, which is
// what a half-close toward a standard agent waits for.
func (a *Agent) respondSuccess(pc *pconn, req *stun.Message) error {
	resp, err := buildSuccess(req, pc.remote, a.creds.pwd)
	if err != nil {
		return err
	}
	pc.sendSTUN(resp)
	pc.answered.Store(true)
	return nil
}

func (a *Agent) respondError(pc *pconn, req *stun.Message, code stun.ErrorCode, now time.Time) {
	resp, err := buildError(req, code, a.creds.pwd)
	if err != nil {
		a.warn(err, now)
		return
	}
	pc.sendSTUN(resp)
}

func (a *Agent) switchRole(now time.Time) {
	a.count.switches++
	a.role.controlling = !a.role.controlling
	a.log.Infof("role conflict: now %s", a.currentRole())
	a.cl.reprioritize(a.role.controlling)
	a.sel.nominating = nil
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
