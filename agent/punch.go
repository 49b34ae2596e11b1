package agent

import (
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/signaling"
)

// Synchronised simultaneous open, the way libp2p DCUtR times its hole
// punch: as soon as the peer's credentials arrive the controlling agent
// sends "ping" over signaling, the peer answers "pong" at once and the
// controlling agent has the round trip. Once both sides have all
// candidates it sends "go" and starts its S-O checks half a round trip
// later, when "go" reaches the peer, which starts on receipt.
// Both SYNs then leave at about the same time and cross between the NATs,
// so each NAT has seen its own SYN before the peer's arrives.

// punchFallback is how long S-O checks wait for the peer's "go" (or, when
// controlling, for its "pong") before they start unsynchronised.
const punchFallback = 3 * time.Second

// startPunchPing measures the signaling round trip as soon as the peer's
// credentials are known (the controlling agent sends "ping").
func (a *Agent) startPunchPing(now time.Time) {
	if !a.controlling || a.punchSeq != 0 {
		return
	}
	a.punchSeq++
	a.punchPing = now
	a.out.send(signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: a.punchSeq, Phase: "ping"}})
}

// maybeStartPunchSync sends "go" when this agent controls, both sides have
// finished gathering and the round trip is known; our S-O checks start
// half a round trip later, when "go" reaches the peer.
func (a *Agent) maybeStartPunchSync(now time.Time) {
	if !a.controlling || !a.eocSent || !a.remoteEOC || a.remoteUfrag == "" || a.punchSent || !a.punchAt.IsZero() {
		return
	}
	if a.punchRTT == 0 {
		a.startPunchPing(now) // no-op when a ping is already out; its pong calls us again
		return
	}
	a.punchSent = true
	half := a.punchRTT / 2
	a.out.send(signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: a.punchSeq, Phase: "go", DelayMs: uint32(half.Milliseconds())}})
	a.punchAt = now.Add(half)
}

func (a *Agent) onPunch(p *signaling.Punch, now time.Time) {
	if p == nil {
		return
	}
	switch p.Phase {
	case "ping":
		a.out.send(signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: p.Seq, Phase: "pong"}})
	case "pong":
		if p.Seq != a.punchSeq || a.punchPing.IsZero() || a.punchRTT != 0 {
			return
		}
		a.punchRTT = max(now.Sub(a.punchPing), time.Millisecond)
		a.maybeStartPunchSync(now)
	case "go":
		if a.punchAt.IsZero() {
			a.punchAt = now
		}
	}
}

// punchReady reports whether S-O checks may start, and when to look again.
func (a *Agent) punchReady(now time.Time) (bool, time.Time) {
	if !a.punchAt.IsZero() {
		return !now.Before(a.punchAt), a.punchAt
	}
	if a.checkStart.IsZero() {
		return false, now.Add(time.Hour)
	}
	fallback := a.checkStart.Add(punchFallback)
	if a.remoteEOC && a.eocSent {
		fallback = a.lastEOC.Add(punchFallback)
	}
	return !now.Before(fallback), fallback
}

// startPunches starts every S-O pair that is waiting or frozen at once:
// pacing them by Ta would spoil the synchronised start.
func (a *Agent) startPunches(now time.Time) {
	a.punched = true
	for _, p := range a.cl.pairs {
		if p.local.TCPType == candidate.SO && (p.state == stateWaiting || p.state == stateFrozen) {
			a.startCheck(p, now)
		}
	}
}
