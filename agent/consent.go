package agent

import (
	"fmt"
	"slices"
	"time"

	"github.com/pion/stun"
)

// consentState is consent freshness on the selected connection (RFC 7675).
// Owned by the loop.
type consentState struct {
	next, last time.Time
	tx         []consentTx // unanswered checks, oldest first: one or two (a map cost 0.3 KiB an idle agent)
	peerFIN    bool        // the peer's FIN arrived: we cannot be answered
	// In a session, the selected connection's bytes from the peer as the
	// last tick saw them, and when they last grew (consentTick).
	inSeen uint64
	inAt   time.Time
}

// consentTx is a consent check awaiting its answer.
type consentTx struct {
	id   [stun.TransactionIDSize]byte
	sent time.Time
}

// answered removes the consent check id answers and reports when it was
// sent; ok is false for no such check.
func (cs *consentState) answered(id [stun.TransactionIDSize]byte) (sent time.Time, ok bool) {
	for i, t := range cs.tx {
		if t.id == id {
			cs.tx = slices.Delete(cs.tx, i, i+1)
			return t.sent, true
		}
	}
	return time.Time{}, false
}

// add records a check sent now, forgetting those that can no longer
// matter (older than timeout) and the oldest beyond maxConsentTx.
func (cs *consentState) add(id [stun.TransactionIDSize]byte, now time.Time, timeout time.Duration) {
	kept := cs.tx[:0]
	for _, t := range cs.tx {
		if now.Sub(t.sent) <= timeout {
			kept = append(kept, t)
		}
	}
	if over := len(kept) - (maxConsentTx - 1); over > 0 {
		kept = kept[:copy(kept, kept[over:])]
	}
	cs.tx = append(kept, consentTx{id: id, sent: now})
}

// maxConsentTx bounds consent transactions kept for matching answers.
const maxConsentTx = 16

// consentTick sends consent checks and expires consent (RFC 7675 §5.1).
func (a *Agent) consentTick(now time.Time, soon func(time.Time)) {
	cs := &a.consent
	if cs.peerFIN || a.sel.pair.pc.checksEnded() || !a.mv.lostAt.IsZero() {
		// Nobody can answer, or no check may follow our data (a standard
		// agent, stdpeer.go): TCP keepalive watches the connection.
		return
	}
	expiry := cs.last.Add(a.cfg.ConsentTimeout)
	if a.canResume(now) {
		// The session survives a broken path (it looks for another), so
		// it takes one for broken sooner: no answer for pathTimeout. But
		// an answer queues behind the data both ways, and on a congested
		// path (CI run 52: 2 MB/s under load, megabytes queued after a
		// resumption's replay) it came later than that while the peer's
		// bytes kept arriving: a path whose bytes arrive works (our own
		// direction TCP_USER_TIMEOUT watches, with Redial), and consent
		// freshness keeps its full timeout.
		if in := a.sel.pair.pc.bytesIn.Load(); in != cs.inSeen {
			cs.inSeen, cs.inAt = in, now
		}
		if e := maxTime(cs.last, cs.inAt).Add(a.pathTimeout()); e.Before(expiry) {
			expiry = e
		}
	}
	if !now.Before(expiry) {
		err := fmt.Errorf("%w: no answer for %v", ErrConsentExpired, now.Sub(cs.last).Round(time.Millisecond))
		a.tr.pair(TraceConsentExpired, a.sel.pair, now, err)
		if a.mv.on {
			a.pathLost(a.sel.pair.pc, err, now)
			return
		}
		a.sel.pair.pc.close(err)
		a.fail(StateFailed, err, now)
		return
	} else {
		soon(expiry)
	}
	if !now.Before(cs.next) {
		a.sendConsent(now)
		cs.next = now.Add(a.consentInterval())
	}
	soon(cs.next)
}

func (a *Agent) sendConsent(now time.Time) {
	p := a.sel.pair
	pwd := a.remotePwd.Load()
	if pwd == nil || p.pc == nil {
		return
	}
	id := a.newTxID()
	m, err := a.request(p, *pwd, id, false, false)
	if err != nil {
		a.warn(err, now)
		return
	}
	a.consent.add(id, now, a.cfg.ConsentTimeout)
	p.pc.sendSTUN(m)
}

// consentInterval is ConsentInterval randomised by ±20% (RFC 7675 §5.1).
func (a *Agent) consentInterval() time.Duration {
	id := a.newTxID()
	f := 0.8 + 0.4*float64(id[0])/255
	return time.Duration(float64(a.cfg.ConsentInterval) * f)
}

// sendEOS sends our in-band end of stream on pc (icetcp-eos); the
// connection stays open for consent.
func (pc *pconn) sendEOS(interrupted bool) error {
	a := pc.owner
	pwd := a.remotePwd.Load()
	if pwd == nil {
		return fmt.Errorf("agent: close write: %w", ErrClosed)
	}
	m, err := buildEOS(a.creds.ufrag, a.peer.ufrag, *pwd, interrupted)
	if err != nil {
		return err
	}
	pc.sendSTUN(m)
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
