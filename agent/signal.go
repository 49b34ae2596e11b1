package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/signaling"
)

// maxPongs bounds the punch pings we answer: a peer that floods pings must
// not grow our outbox.
const maxPongs = 8

// Extensions two icetcp agents may agree on, by their names in the
// credentials' Features (and in SDP as ICE options). Each is used only when
// both sides name it, so third-party agents see standard ICE.
const (
	// featFrames: "I read RFC 4571 frames of any size" (pion/ice v2 reads
	// at most 8,192 bytes, so without it we write smaller frames).
	featFrames = "icetcp-frames"
	// featNominate: the controlling agent may put USE-CANDIDATE on its
	// first check of a pair (nomination travels with the check).
	featNominate = "icetcp-nominate"
	// featEOS: end of stream travels in band (an authenticated STUN
	// indication) instead of a TCP FIN, so consent keeps running in both
	// directions after a half-close and a crash cannot fake an end.
	featEOS = "icetcp-eos"
	// featDone: each side says when it has nothing left to try
	// (checks-done), so neither gives up while the other is still
	// checking, however slow a loaded host makes it.
	featDone = "icetcp-done"
	// featSession: the stream travels in a session (session.go) that
	// survives a move to another connection: relay-to-direct upgrades
	// and resumption after a broken path.
	featSession = "icetcp-session"
	// featPredict (predict.go): "I announce predicted ports of a NAT that
	// allocates them in sequence, and punch the peer's".
)

// features are the extensions in use.
type features struct {
	frames, nominate, eos, done, session, predict bool
	// resume names the session a restarted agent resumes (featResume
	// followed by its id in hex); "" for a fresh one.
	resume string
}

// featResume prefixes the id of the session an ICE restart resumes
// (move.go): both sides must name the same one.
const featResume = "icetcp-resume-"

func parseFeatures(names []string) features {
	var f features
	for _, n := range names {
		switch n {
		case featFrames:
			f.frames = true
		case featNominate:
			f.nominate = true
		case featEOS:
			f.eos = true
		case featDone:
			f.done = true
		case featSession:
			f.session = true
		case featPredict:
			f.predict = true
		default:
			if id, ok := strings.CutPrefix(n, featResume); ok {
				f.resume = id
			}
		}
	}
	return f
}

func (f features) list() []string {
	var out []string
	if f.frames {
		out = append(out, featFrames)
	}
	if f.nominate {
		out = append(out, featNominate)
	}
	if f.eos {
		out = append(out, featEOS)
	}
	if f.done {
		out = append(out, featDone)
	}
	if f.session {
		out = append(out, featSession)
	}
	if f.predict {
		out = append(out, featPredict)
	}
	if f.resume != "" {
		out = append(out, featResume+f.resume)
	}
	return out
}

func (f features) and(g features) features {
	return features{frames: f.frames && g.frames, nominate: f.nominate && g.nominate, eos: f.eos && g.eos, done: f.done && g.done,
		session: f.session && g.session && f.eos && g.eos, predict: f.predict && g.predict}
}

// localFeatures is what this agent offers.
func (a *Agent) localFeatures() features {
	if a.cfg.StandardOnly {
		return features{}
	}
	f := features{frames: true, nominate: true, eos: true, done: true, session: a.cfg.Session, predict: true}
	if a.cfg.resume != nil {
		f.resume = a.cfg.resume.idHex()
	}
	return f
}

// agreed is what both sides support; valid once the peer's credentials
// arrived.
func (a *Agent) agreed() features { return a.localFeatures().and(a.peer.features) }

// byeReason fits err into the signaling schema's reason field.
func byeReason(err error) string {
	r := err.Error()
	if len(r) > 200 {
		r = r[:200]
	}
	return strings.ToValidUTF8(r, "?")
}

// recvLoop feeds signaling messages to the loop. A malformed message is a
// warning; any other receive error ends the loop.
func (a *Agent) recvLoop(ctx context.Context, ch signaling.Channel) {
	for {
		m, err := ch.Recv(ctx)
		if errors.Is(err, signaling.ErrInvalidMessage) {
			if !a.post(func(now time.Time) { a.warn(fmt.Errorf("agent: signaling: %w", err), now) }) {
				return
			}
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				a.post(func(now time.Time) { a.onSignalError(err, now) })
			}
			return
		}
		if !a.post(func(now time.Time) { a.onSignal(m, now) }) {
			return
		}
	}
}

// stopSignaling ends the signaling goroutines once they are no longer
// needed (a pair is selected): an idle connected agent keeps only its
// loop and the selected connection's reader.
func (a *Agent) stopSignaling() {
	a.sig.out.close()
	a.sig.out = nil // the outbox's goroutine flushes and lets go of the channel
	if a.sig.cancel != nil {
		a.sig.cancel()
		a.sig.cancel = nil // it holds the context (and its Done channel) for the agent's life
	}
}

func (a *Agent) onSignalError(err error, now time.Time) {
	if a.sel.pair != nil {
		return // the signaling channel is not needed any more
	}
	if a.peer.ufrag == "" {
		a.fail(StateFailed, &FailedError{Reason: "signaling ended before the peer's credentials arrived: " + err.Error(), Err: err}, now)
		return
	}
	a.warn(fmt.Errorf("agent: signaling: %w (checks go on)", err), now)
}

func (a *Agent) onSignal(m signaling.Message, now time.Time) {
	if m.Type == signaling.TypeNAT {
		// Also after selection: a pair nominated over TCP can be
		// selected before the class is read, and Stats reports it.
		a.onRemoteNAT(m.NAT, now)
		return
	}
	if a.sel.pair != nil {
		if m.Type == signaling.TypeBye {
			// The peer failed after our selection: it never selected
			// this pair (a peer that did closes the connection instead).
			a.fail(StateFailed, &FailedError{Reason: "peer gave up after we selected: " + m.Reason, Err: ErrPeerLeft}, now)
			return
		}
		// Only a session's search for a direct path (move.go) still
		// takes candidates.
		if a.mv.until.IsZero() || (m.Type != signaling.TypeCandidate && m.Type != signaling.TypeEndOfCandidates) {
			return
		}
	}
	switch m.Type {
	case signaling.TypeCredentials:
		a.onCredentials(m, now)
	case signaling.TypeCandidate:
		c, err := candidate.Parse(m.Candidate)
		if err != nil {
			if !errors.Is(err, candidate.ErrUnsupportedTransport) {
				a.warn(fmt.Errorf("agent: remote candidate %q: %w", m.Candidate, err), now)
			}
			return
		}
		if a.onPredictedCandidate(c, now) {
			return
		}
		a.addRemote(c, now)
		a.maybePredict(now)
	case signaling.TypeEndOfCandidates:
		if !a.peer.eoc {
			a.peer.eoc, a.peer.eocAt = true, now
		}
	case signaling.TypeBye, signaling.TypePeerLeft:
		a.onPeerGone(m, now)
	case signaling.TypePunch:
		a.onPunch(m.Punch, now)
	case signaling.TypeChecksDone:
		a.peer.done = true
	}
}

// onPeerGone handles the peer's bye (it gave up or closed) and the
// rendezvous' peer-left. A peer that selected a pair first may leave
// signaling while our side still finishes its checks over TCP, so peer-left
// is fatal only when no connection to the peer is alive.
func (a *Agent) onPeerGone(m signaling.Message, now time.Time) {
	a.peer.eoc = true // nothing more will come
	if m.Type == signaling.TypePeerLeft && (a.peerConnected() || a.cl.inProgress()) {
		// A peer that selected first may leave signaling at once: its
		// answer to our check may still be on its way.
		a.log.Debugf("peer left signaling; finishing over the connections we have")
		return
	}
	reason := "peer left before a pair was selected"
	if m.Type == signaling.TypeBye {
		reason = "peer gave up"
	}
	if m.Reason != "" {
		reason += ": " + m.Reason
	}
	// The peer may give up a moment before our own pairs fail the same
	// way: say how ours failed too, so the reason does not depend on
	// which side's timers ran out first.
	failures := a.cl.failures()
	if len(failures) > 0 {
		reason += "; " + summarize(failures)
	}
	a.fail(StateFailed, &FailedError{Reason: reason, Err: ErrPeerLeft, Checks: failures}, now)
}

// peerConnected reports an authenticated connection to the peer.
func (a *Agent) peerConnected() bool {
	for pc := range a.conns {
		if pc.authenticated.Load() && !pc.closed() {
			return true
		}
	}
	return false
}

func (a *Agent) onCredentials(m signaling.Message, now time.Time) {
	if a.peer.ufrag != "" {
		if m.Ufrag != a.peer.ufrag {
			a.warn(fmt.Errorf("agent: peer sent new credentials (ICE restart is not supported); ignored"), now)
		}
		return
	}
	a.peer.ufrag = m.Ufrag
	pwd := m.Pwd
	a.remotePwd.Store(&pwd)
	a.peer.features = parseFeatures(m.Features)
	if a.cfg.resume != nil && (a.peer.features.resume != a.cfg.resume.idHex() || !a.agreed().session) {
		// Whoever answered our restart is not resuming this session (a
		// new peer in the room, or one that lost it).
		a.fail(StateFailed, fmt.Errorf("%w: it resumes %q, we %q", errNotResumed, a.peer.features.resume, a.cfg.resume.idHex()), now)
		return
	}
	if !a.role.known {
		switch m.Role {
		case signaling.RoleControlling:
			a.role.controlling = false
		case signaling.RoleControlled:
			a.role.controlling = true
		default:
			a.role.controlling = a.creds.tiebreaker > m.Tiebreaker
		}
		a.role.known = true
		a.cl.reprioritize(a.role.controlling)
	}
	a.lastActivity = now
	if a.checkStart.IsZero() {
		// Not when the peer's check came first (onSTUN): ConnectTime
		// counts from then, and a selection at this very moment (the
		// check was a nomination we answered) did take that long.
		a.checkStart = now
	}
	a.setState(StateChecking, now)
	if pc := a.sel.committed; pc != nil {
		// We confirmed the peer's nomination before its credentials came:
		// the peer has selected that connection.
		a.selectCommitted(now)
		return
	}
	a.startPunchPing(now)
	a.maybePredict(now)
}
