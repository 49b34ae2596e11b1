package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/natcheck"
	"github.com/icetcp/icetcp/internal/wait"
)

// Where a session goes (session.go does the moving). With a session the
// relay is nominated as soon as it works (relayDue): time to first byte
// is whichever path is ready first. After a relayed pair was selected the
// search for a direct one goes on for UpgradeWindow, in the background:
// checks and punches still under way continue, listeners stay open for
// the peer's, and direct pairs that failed are tried again in rounds
// (upgradeRounds), the NAT classes ruling out what cannot work (startCheck
// fails those at once). The first direct pair that validates is
// nominated, as before selection; both sides move the session to it on
// the nomination, and the relayed connection is read to its END, closed,
// and its allocation released.
//
// When the selected path breaks during the search (a relay restart), the
// search carries on for ResumeTimeout and the session moves to the direct
// pair it finds. When it breaks after (or without) one, and Config.Redial
// is set, ICE restarts: a new agent gathers anew (a NAT that restarted
// maps us elsewhere, a relay that restarted needs a new allocation) and
// connects over a new signaling channel to the peer, which restarts too;
// the session moves to the pair they select, and the old agent retires.
// Read and Write see nothing but a stall; only when ResumeTimeout passes
// without a path do they fail, saying how far each stream got.

// moveState is a session's path policy. Owned by the loop.
type moveState struct {
	until    time.Time // the search for a direct path runs until then (zero: no search)
	round    int       // upgrade rounds done
	roundAt  time.Time // when the next round re-arms failed direct pairs
	lostAt   time.Time // the selected path broke then; zero while it works
	lostErr  error
	draining []*pconn  // paths we moved from, closed once both sides left them (or after drainTimeout)
	movedAt  time.Time // the last move (movePath)
	holds    int       // relay holds this search (holdForMove)
	on       bool      // a session was agreed: the Conn can move
	// restarting: an ICE restart runs (restart); retired: it succeeded,
	// the session is another agent's now, and this one only closes.
	restarting, retired bool
	restartTried        bool // since the last break: a restart ran or runs
}

// searchGrace is how long a session whose path broke while its search
// for a direct path ran leaves that search alone before it also restarts
// ICE: both sides usually see the break and search together, and a
// restart on top of a move races it (each side could take the other's).
func (a *Agent) searchGrace() time.Duration {
	return min(time.Second, a.cfg.ResumeTimeout/3)
}

// upgradeRounds are when, after a relayed pair's selection, the direct
// pairs that failed are tried again: a direct path may open late (a
// firewall's state, a NAT that restarted, a peer that moved). Both sides
// count from their own selection, within a round trip of each other, and
// a punch runs for a check timeout, so their punches overlap.
var upgradeRounds = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}

// drainTimeout bounds how long a path we moved from stays open for the
// peer's END.
const drainTimeout = 5 * time.Second

// searching reports that direct pairs are still tried for the session.
func (m *moveState) searching(now time.Time) bool {
	return !m.until.IsZero() && now.Before(m.until)
}

// startSession makes the selected pair p the session's path: a new
// session, or, after an ICE restart, the one it resumes. It starts the
// search for a direct path if p is relayed and one may exist.
func (a *Agent) startSession(p *pair, now time.Time) {
	c := a.sel.conn
	p.pc.viaRelay.Store(isRelayed(p))
	cp := c.cur.Load()
	if cp == nil || cp.pc != p.pc {
		cp = &connPath{pc: p.pc, local: p.local, remote: p.remote, path: pathOf(p)}
		c.cur.Store(cp)
	}
	if s := a.cfg.resume; s != nil {
		s.addPath(cp, now)
		s.moveTo(p.pc)
	} else {
		c.sess = newSession(c, p.pc, a.cfg.ReplayBuffer)
		c.sess.id = sessionID(a.creds.ufrag, a.creds.pwd, a.peer.ufrag, *a.remotePwd.Load())
		c.sess.addPath(cp, now)
	}
	a.sess.Store(c.sess)
	a.mv.on = true
	if a.cfg.Redial != nil {
		setUserTimeout(p.pc.c, a.pathTimeout())
	}
	if isRelayed(p) && a.directPossible() {
		a.mv.until = now.Add(a.cfg.UpgradeWindow)
		a.mv.roundAt = now.Add(upgradeRounds[0])
		a.mv.holds = 0
		c.sess.upgrading.Store(true)
	}
}

// maxHolds bounds the relay holds of one search: a pair that validates
// and is not nominated costs the stream a hold's stall.
const maxHolds = 2

// holdForMove runs when direct pair p validated while the session rides
// the relay: the relay rests, both ways, until the move (the controlling
// side nominates p, or another direct pair, within a round trip or two)
// instead of running on at full speed meanwhile. The hold ends at the
// move, or after two of p's round trips and a margin for a busy host.
func (a *Agent) holdForMove(p *pair) {
	sp := a.sel.pair
	if sp == nil || !a.mv.on || !isRelayed(sp) || isRelayed(p) || a.mv.holds >= maxHolds {
		return
	}
	a.mv.holds++
	a.sel.conn.sess.hold(sp.pc, min(time.Second, 2*p.rtt+250*time.Millisecond))
}

// directPossible reports a direct pair worth more checks: one not ruled
// out by the NAT classes, or a candidate still to come.
func (a *Agent) directPossible() bool {
	if !a.peer.eoc {
		return true
	}
	for _, p := range a.cl.pairs {
		if isRelayed(p) {
			continue
		}
		if v, _ := a.punchVerdict(p); v != natcheck.Unlikely || a.cfg.AwaitDirect {
			return true
		}
	}
	return false
}

// searchTick runs the search for a direct path after a relayed pair was
// selected, and resumption's deadline.
func (a *Agent) searchTick(now time.Time, soon func(time.Time)) {
	if !a.mv.lostAt.IsZero() && !a.mv.restarting {
		deadline := a.mv.lostAt.Add(a.cfg.ResumeTimeout)
		if !now.Before(deadline) {
			a.sessionLost(now)
			return
		}
		soon(deadline)
		if a.cfg.Redial != nil && !a.mv.restartTried {
			if at := a.mv.lostAt.Add(a.searchGrace()); !now.Before(at) {
				a.restart(now)
			} else {
				soon(at)
			}
		}
	}
	if a.mv.until.IsZero() {
		return
	}
	if !a.mv.searching(now) {
		a.endSearch(now)
		return
	}
	soon(a.mv.until)
	if !now.Before(a.mv.roundAt) && a.mv.round < len(upgradeRounds) {
		a.rearmDirect(now)
		a.mv.round++
		if a.mv.round < len(upgradeRounds) {
			a.mv.roundAt = a.sel.selectedAt.Add(upgradeRounds[a.mv.round])
		}
	}
	if a.mv.round < len(upgradeRounds) {
		soon(a.mv.roundAt)
	}
	a.runChecks(now, soon, true, isRelayed)
	a.predictTick(now, soon) // a round cut short by the selection goes on; each upgrade round allows one more
	// Nomination of a direct pair: a check to an icetcp peer carries
	// USE-CANDIDATE already (nominateWithCheck); this is for a pair
	// validated by a plain check (the peer's check triggered ours while
	// we were controlled, then a role switch).
	if a.role.controlling && a.sel.nominating == nil {
		for _, p := range a.cl.pairs {
			if p.state == stateSucceeded && !isRelayed(p) && p.pc != nil && !p.pc.closed() && p != a.sel.pair {
				a.nominate(p, now)
				break
			}
		}
	}
}

// renominateAsMoves sends again, marked as moves, the nominations of
// direct pairs still waiting for an answer when the relayed pair was
// selected: the peer committed to the relay, and takes an unmarked
// nomination after that for a late one, which it does not answer.
func (a *Agent) renominateAsMoves(now time.Time) {
	if !a.role.controlling {
		return
	}
	a.sel.nominating = nil
	for _, p := range a.cl.pairs {
		if !isRelayed(p) && p.tx != nil && p.tx.useCandidate && !p.tx.move && p.pc != nil && !p.pc.closed() {
			a.sendCheck(p, now, true)
		}
	}
}

// rearmDirect makes the direct pairs that failed waiting again (their
// punch or connect is tried anew); the NAT classes fail the hopeless ones
// again at once.
func (a *Agent) rearmDirect(now time.Time) {
	for _, p := range a.cl.pairs {
		if isRelayed(p) || p.state != stateFailed || p.local.TCPType == candidate.Passive {
			continue
		}
		if v, _ := a.punchVerdict(p); v == natcheck.Unlikely && !a.cfg.AwaitDirect {
			continue
		}
		p.state, p.err, p.retries = stateWaiting, nil, 0
		p.firstTry, p.notBefore = time.Time{}, now
	}
}

// errMovedOn closes the path the session left, once both sides left it.
var errMovedOn = errors.New("agent: the session moved to another path")

// errSearchOver closes what the search for a direct path still had open.
var errSearchOver = errors.New("agent: the session's search for a direct path ended")

// endSearch stops the background checks: what they had open closes, and
// what selection would have released goes.
func (a *Agent) endSearch(now time.Time) {
	a.mv.until = time.Time{}
	if s := a.sess.Load(); s != nil && !a.mv.retired {
		s.upgrading.Store(false) // not when the session is a restarted agent's now
	}
	for _, q := range a.cl.pairs {
		if q == a.sel.pair {
			continue
		}
		if q.cancel != nil {
			q.cancel()
			q.cancel = nil
		}
		q.attempt++
		if q.state == stateInProgress || q.state == stateWaiting || q.state == stateFrozen {
			q.state, q.err = stateFailed, errSearchOver
		}
	}
	for pc := range a.conns {
		if pc != a.sel.pair.pc && !a.isDraining(pc) {
			pc.close(errSearchOver)
		}
	}
	a.stopSTUN()
	if !a.sel.released && !now.Before(a.sel.releaseAt) {
		a.release(now)
	}
	if !a.mv.lostAt.IsZero() {
		a.sessionLost(now) // the broken path found no successor in the window
	}
}

func (a *Agent) isDraining(pc *pconn) bool {
	for _, d := range a.mv.draining {
		if d == pc {
			return true
		}
	}
	return false
}

// moveSettle is how long after a move the controlled side refuses another
// move to a healthy path's successor: the controlling side's nominations
// of two pairs cross within a round trip.
const moveSettle = time.Second

// takesMove reports whether a move nomination is taken now (controlled
// side): from the relay, from a broken path, or a while after the last
// move.
func (a *Agent) takesMove(now time.Time) bool {
	return isRelayed(a.sel.pair) || !a.mv.lostAt.IsZero() || a.mv.movedAt.IsZero() || !now.Before(a.mv.movedAt.Add(moveSettle))
}

// movePath moves the session to p, a direct pair the controlling side
// nominated: the Conn carries on there, the old path drains.
func (a *Agent) movePath(p *pair, now time.Time) {
	old := a.sel.pair
	c := a.sel.conn
	p.state, p.nominated = stateSucceeded, true
	a.sel.pair, a.sel.nominating, a.sel.committed = p, nil, p.pc
	p.pc.eosMode.Store(true)
	p.pc.viaRelay.Store(isRelayed(p))
	keepAlive(p.pc.c, a.cfg.ConsentInterval)
	if a.cfg.Redial != nil {
		setUserTimeout(p.pc.c, a.pathTimeout())
	}
	cp := &connPath{pc: p.pc, local: p.local, remote: p.remote, path: pathOf(p)}
	c.cur.Store(cp)
	c.sess.addPath(cp, now)
	c.sess.moveTo(p.pc)
	if isRelayed(old) && !isRelayed(p) {
		// The peer's nomination (or its answer) is our validation, if no
		// check of ours came first; the relay's reader stopped above.
		old.pc.markDirectValid()
	}
	if old.pc != nil && !old.pc.closed() {
		a.mv.draining = append(a.mv.draining, old.pc)
		old.pc.drainBy = now.Add(drainTimeout)
		if a.role.controlling {
			// The peer moved before it answered the nomination: nothing
			// on the old path is of use to either side any more, and
			// closing it ends what the relay still carries.
			old.pc.close(errMovedOn)
		}
	}
	old.nominated = false
	a.mv.movedAt = now
	resumed := !a.mv.lostAt.IsZero()
	a.mv.lostAt, a.mv.lostErr, a.mv.restartTried = time.Time{}, nil, false
	a.consent = consentState{last: now, next: now.Add(a.consentInterval())}
	if !a.role.controlling {
		a.sendConsent(now)
	}
	a.sel.releaseAt = now // the peer checked this path: nothing more to wait for
	a.endSearch(now)
	a.announceMove(p, resumed, now)
}

// announceMove tells the application the session moves to p (and, with
// resumed, that its path had broken).
func (a *Agent) announceMove(p *pair, resumed bool, now time.Time) {
	st := a.sel.conn.sess.stats()
	ps := p.stats()
	ps.Selected = true
	at := st.sent + st.recvd
	a.events.emit(Event{Type: EventPath, Time: now, Pair: &ps, AtBytes: at})
	if resumed {
		a.events.emit(Event{Type: EventResumed, Time: now, Pair: &ps, AtBytes: at})
	}
	a.tr.trace(TraceEvent{Kind: TracePathMoved, Time: now, Pair: &ps, AtBytes: at, Resumed: resumed, Path: pathOf(p)})
	a.log.Infof("session moved to %s %s -> %s after %d bytes sent, %d received", pathOf(p), addrOf(p.local), addrOf(p.remote), st.sent, st.recvd)
}

// drainTick closes the paths we moved from that did not end in time.
func (a *Agent) drainTick(now time.Time, soon func(time.Time)) {
	for _, pc := range a.mv.draining {
		if !now.Before(pc.drainBy) {
			pc.close(errSearchOver)
		} else {
			soon(pc.drainBy)
		}
	}
}

// pathGone forgets a path we moved from once its connection ended, with
// the allocation that carried it.
func (a *Agent) pathGone(pc *pconn) {
	for i, d := range a.mv.draining {
		if d == pc {
			a.mv.draining = append(a.mv.draining[:i], a.mv.draining[i+1:]...)
			if pc.local.Type == candidate.Relay {
				if rl := a.g.relayOf(pc.local); rl != nil {
					a.deallocate(rl)
				}
			}
			return
		}
	}
}

// errPathLost wraps why the selected path of a session broke.
var errPathLost = errors.New("agent: the session's path broke")

// pathLost takes the break of the selected path in session mode: the
// Conn stalls while the search looks for another path, for ResumeTimeout;
// without a search the session fails at once.
func (a *Agent) pathLost(pc *pconn, err error, now time.Time) {
	if !a.mv.lostAt.IsZero() {
		return
	}
	// The cause is named, not wrapped: a path that ended with EOF must
	// never read as the end of the stream.
	a.mv.lostAt, a.mv.lostErr = now, fmt.Errorf("%w: %v", errPathLost, err)
	if errors.Is(err, ErrConsentExpired) {
		a.mv.lostErr = fmt.Errorf("%w: %w", errPathLost, err)
	}
	a.tr.pair(TracePathLost, a.sel.pair, now, err)
	a.log.Infof("%v: looking for another path for %v", a.mv.lostErr, a.cfg.ResumeTimeout)
	pc.close(a.mv.lostErr)
	switch {
	case a.cfg.Redial != nil && !a.mv.searching(now):
		a.restart(now)
	case a.mv.searching(now):
		// The search goes on, for the resumption's time; with Redial an
		// ICE restart follows after searchGrace (searchTick) if the
		// search found nothing: its pairs may all share what broke
		// (relayed connections of one relay that got stuck, with no
		// direct path between two symmetric NATs).
		if a.mv.until.Before(now.Add(a.cfg.ResumeTimeout)) {
			a.mv.until = now.Add(a.cfg.ResumeTimeout)
		}
		a.rearmDirect(now)
	default:
		a.sessionLost(now)
	}
}

// canResume reports a session that can survive the loss of its path: it
// is still searching for a direct one, or it may restart ICE.
func (a *Agent) canResume(now time.Time) bool {
	return a.mv.on && (a.mv.searching(now) || a.cfg.Redial != nil)
}

// pathTimeout is how long a session's path may go without an answer to
// consent before the session takes it for broken: two consent intervals
// and a half (a busy peer answers late, not twice in a row never). The
// session survives it (pathLost), so it need not wait as long as consent
// freshness, which ends connections without one.
func (a *Agent) pathTimeout() time.Duration {
	return min(a.cfg.ConsentTimeout, a.cfg.ConsentInterval*5/2)
}

// errNotResumed fails a restarted agent whose peer does not resume the
// same session.
var errNotResumed = errors.New("agent: the peer that answered the restart does not resume this session")

// restartBackoff is the pause between two restart attempts.
const restartBackoff = 500 * time.Millisecond

// restart runs an ICE restart for the session until ResumeTimeout after
// the break: a new agent (the same Config, fresh credentials and
// candidates) connects over a channel from Redial, and selecting its pair
// moves the session there (startSession). The peer restarts when it sees
// the break too, and the rendezvous pairs the two again. A search that
// moves the session while it runs wins (onRestarted).
func (a *Agent) restart(now time.Time) {
	a.mv.restarting, a.mv.restartTried = true, true
	a.stopSTUN()
	a.closeListeners()
	a.closeRelays()
	cfg := a.cfg
	cfg.resume = a.sel.conn.sess
	deadline := a.mv.lostAt.Add(a.cfg.ResumeTimeout)
	a.goTracked(func() {
		ctx, cancel := context.WithDeadline(a.ctx, deadline)
		defer cancel()
		b, err := restartOnce(ctx, cfg, a.log)
		if !a.post(func(now time.Time) { a.onRestarted(b, err, now) }) && b != nil {
			b.Close()
		}
	})
}

// restartOnce connects a new agent for cfg.resume, trying again after a
// failure until ctx ends.
func restartOnce(ctx context.Context, cfg Config, log logging.LeveledLogger) (*Agent, error) {
	var last error
	for {
		b, err := connectOver(ctx, cfg)
		if err == nil {
			return b, nil
		}
		last = err
		log.Infof("agent: session restart: %v", err)
		if wait.Sleep(ctx, restartBackoff) != nil {
			return nil, fmt.Errorf("agent: session restart: %w", last)
		}
	}
}

func connectOver(ctx context.Context, cfg Config) (*Agent, error) {
	ch, err := cfg.Redial(ctx)
	if err != nil {
		return nil, fmt.Errorf("redial: %w", err)
	}
	defer ch.Close()
	b, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := b.Connect(ctx, ch); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// onRestarted takes the restart's outcome: the session is the new
// agent's now, and this one retires; or it failed.
func (a *Agent) onRestarted(b *Agent, err error, now time.Time) {
	a.mv.restarting = false
	if a.mv.lostAt.IsZero() {
		// The search moved the session meanwhile: it stays there, and
		// the restarted agent, if any, is not needed.
		if b != nil {
			a.goTracked(func() { b.Close() })
		}
		a.log.Infof("agent: session restart ended (%v) after the session had moved: not used", err)
		return
	}
	if err != nil {
		a.mv.lostErr = fmt.Errorf("%w; %v", a.mv.lostErr, err)
		a.sessionLost(now)
		return
	}
	a.mv.retired = true
	a.successor.Store(b)
	a.fail(StateClosed, errRetired, now)
}

// errRetired closes an agent whose session an ICE restart took over.
var errRetired = errors.New("agent: the session moved to a restarted agent")

// sessionLost fails a session whose path broke and found no successor.
func (a *Agent) sessionLost(now time.Time) {
	st := a.sel.conn.sess.stats()
	err := fmt.Errorf("agent: session: no path found within %v (%d bytes received, %d sent and acknowledged): %w",
		a.cfg.ResumeTimeout, st.recvd, st.acked, a.mv.lostErr)
	a.sel.conn.sess.fail(err)
	a.fail(StateFailed, err, now)
}

// sessionPathEnd reports whether the end of the selected connection pc
// with err leaves the session alive (pathLost handles it).
func (a *Agent) sessionPathEnd(pc *pconn, err error) bool {
	if !a.mv.on || a.mv.retired {
		return false
	}
	if pc.closed() && errors.Is(pc.closeErr(), net.ErrClosed) {
		return false // Conn.Close
	}
	return a.sel.conn.sess.movable(pc, pc.endErr(err))
}

// PathStats is one path a session used, in order.
type PathStats struct {
	Path          string // "direct" or "relay"
	Local, Remote candidate.Candidate
	From, Until   time.Time // Until is zero for the current path
	// BytesSent and BytesReceived count the application bytes the path
	// carried, repeats after a move included.
	BytesSent, BytesReceived uint64
	// AfterDirect is, on a relayed path, what it carried both ways after
	// a direct pair validated: the cost of the upgrade, the data in
	// flight on the relay when the session moved.
	AfterDirect uint64

	pc *pconn // counts its bytes, also after the session left it
}

// SessionStats describe a Conn's session (icetcp-session).
type SessionStats struct {
	// Moves counts the moves to another path (upgrades and resumptions).
	Moves int
	// Sent is our stream's length, Acked what the peer took of it,
	// Received what we took of the peer's; Unacked is the replay buffer.
	Sent, Acked, Received uint64
	Unacked               int
	Paths                 []PathStats
}

func (a *Agent) sessionStats() *SessionStats {
	if !a.mv.on || a.sel.conn == nil || a.sel.conn.sess == nil {
		return nil
	}
	st := a.sel.conn.sess.stats()
	return &SessionStats{Moves: st.moves, Sent: st.sent, Acked: st.acked, Received: st.recvd, Unacked: st.unacked, Paths: st.paths}
}
