package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/framing"
)

// Connections: the accept loops of our listeners, connections a Mux hands
// over, and the reader each connection gets; the loop adopts them and
// hears when they end.

// Limits on accepted connections that have not yet sent an authenticated
// check, per agent and per source address: a flood from one source is cut
// off without starving the peer's connections from another.
const (
	maxPendingInbound   = 64
	maxPendingPerSource = 8
)

// startAccepting runs an accept loop per listener.
func (a *Agent) startAccepting() {
	for _, ln := range a.g.listeners {
		a.goTracked(func() { a.acceptLoop(ln) })
	}
}

func (a *Agent) acceptLoop(ln *listener) {
	for {
		c, err := ln.l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.log.Warnf("accept on %s: %v", ln.cand.Addr, err)
			}
			return
		}
		src := addrPortOf(c.RemoteAddr()).Addr()
		if a.inbound.Take(src) != nil {
			a.log.Debugf("accept on %s: too many connections await their first check; closing %s", ln.cand.Addr, c.RemoteAddr())
			c.Close()
			continue
		}
		if !a.post(func(now time.Time) { a.onAccepted(c, nil, nil, ln.cand, now) }) {
			a.inbound.Give(src)
			c.Close()
			return
		}
	}
}

// handoff takes a connection a Mux accepted and routed here by USERNAME,
// with its first frame already read.
func (a *Agent) handoff(c net.Conn, fr *framing.Reader, first []byte, local candidate.Candidate) bool {
	src := addrPortOf(c.RemoteAddr()).Addr()
	if a.inbound.Take(src) != nil {
		return false
	}
	if !a.post(func(now time.Time) { a.onAccepted(c, fr, first, local, now) }) {
		a.inbound.Give(src)
		return false
	}
	return true
}

// onAccepted adopts an inbound connection. After the selection it is still
// answered until the listeners are released (a standard agent may be
// finishing its checks), but it carries no data.
func (a *Agent) onAccepted(c net.Conn, fr *framing.Reader, first []byte, local candidate.Candidate, now time.Time) {
	if a.sel.released || a.state == StateFailed || a.state == StateClosed {
		a.inbound.Give(addrPortOf(c.RemoteAddr()).Addr())
		c.Close()
		return
	}
	a.lastActivity = now
	a.adopt(c, fr, true, local, first)
}

// adopt wraps c and starts its reader. Inbound connections count as
// pending until a check on them is authenticated.
func (a *Agent) adopt(c net.Conn, fr *framing.Reader, inbound bool, local candidate.Candidate, first []byte) *pconn {
	pc := newPConn(a.nextID.Add(1), c, fr, inbound, local, a.goTracked, a.log.Debugf)
	pc.owner = a
	a.conns[pc] = struct{}{}
	if inbound {
		src := pc.remote.Addr()
		pc.onAuth = func() { a.inbound.Give(src) }
	}
	rc := readerConfig{
		localUfrag: a.creds.ufrag, localPwd: a.creds.pwd, remotePwd: &a.remotePwd,
		firstTimeout: a.cfg.FirstMessageTimeout, first: first,
		onSTUN: func(pc *pconn, m *stun.Message) {
			a.post(func(now time.Time) { a.onSTUN(pc, m, now) })
		},
		onEnd: func(pc *pconn, err error) {
			if inbound {
				pc.markAuthenticated() // no longer pending either way
			}
			a.post(func(now time.Time) { a.onConnEnd(pc, err, now) })
		},
		onAck: func(pc *pconn, r uint64) {
			s := a.sess.Load()
			if s == nil {
				// A restarted agent: the peer may select and answer our
				// move before we select; its first ACK must not be lost.
				s = a.cfg.resume
			}
			if s != nil {
				s.onAck(pc, r)
			}
		},
		log: a.log.Debugf,
	}
	a.goTracked(func() { pc.readLoop(rc) })
	return pc
}

// onConnEnd runs when a connection's reader stopped.
func (a *Agent) onConnEnd(pc *pconn, err error, now time.Time) {
	if a.sel.pair != nil && pc == a.sel.pair.pc {
		// It stays in conns: whatever ends the agent closes it.
		if a.sessionPathEnd(pc, err) {
			a.pathLost(pc, err, now)
			return
		}
		if pc.closed() {
			// We closed it (Conn.Close): a deliberate end, whatever the
			// reader saw last.
			a.fail(StateClosed, ErrClosed, now)
			return
		}
		if errors.Is(err, io.EOF) {
			if !pc.eosMode.Load() {
				a.consent.peerFIN = true // the peer half-closed; we may still write
				return
			}
			// An icetcp peer ends in band; its FIN after that is a close
			// of the whole connection, without it the peer vanished (Read
			// says so after the bytes that arrived).
			if pc.peerEOS.Load() {
				a.fail(StateClosed, fmt.Errorf("%w: %w", errPeerClosed, ErrClosed), now)
				return
			}
		}
		a.fail(StateFailed, fmt.Errorf("agent: selected connection lost: %w", err), now)
		return
	}
	delete(a.conns, pc)
	pc.close(err)
	a.pathGone(pc)
	if a.sel.conn == nil || a.sel.conn.sess == nil {
		pc.q.drain() // a session's reader may still take what a path it left had
	}
	if pc == a.sel.committed && a.sel.pair == nil && a.state != StateFailed && a.state != StateClosed {
		a.fail(StateFailed, a.failure(errNominatedLost.Error()+": "+err.Error(), errNominatedLost), now)
		return
	}
	if p := pc.pair; p != nil && p.pc == pc && a.sel.pair == nil {
		if p.state == stateInProgress || p.state == stateSucceeded {
			a.failPair(p, fmt.Errorf("%w: %w", errConnLost, err), now)
		} else {
			p.pc = nil
		}
	}
}
