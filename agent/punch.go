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

// punchState is the synchronisation of the S-O checks. Owned by the loop.
type punchState struct {
	sent    bool // our "go" is out
	seq     uint32
	ping    time.Time
	at      time.Time // when S-O checks start; zero until synchronised
	rtt     time.Duration
	started bool // the synchronised S-O checks have started
}

// startPunchPing measures the signaling round trip as soon as the peer's
// credentials are known (the controlling agent sends "ping").
func (a *Agent) startPunchPing(now time.Time) {
	if !a.controlling || a.punch.seq != 0 {
		return
	}
	a.punch.seq++
	a.punch.ping = now
	a.out.send(signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: a.punch.seq, Phase: signaling.PunchPing}})
}

// maybeStartPunchSync sends "go" when this agent controls, both sides have
// finished gathering and the round trip is known; our S-O checks start
// half a round trip later, when "go" reaches the peer.
func (a *Agent) maybeStartPunchSync(now time.Time) {
	ps := &a.punch
	if !a.controlling || !a.eocSent || !a.remoteEOC || a.remoteUfrag == "" || ps.sent || !ps.at.IsZero() {
		return
	}
	if ps.rtt == 0 {
		a.startPunchPing(now) // no-op when a ping is already out; its pong calls us again
		return
	}
	ps.sent = true
	half := ps.rtt / 2
	a.out.send(signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: ps.seq, Phase: signaling.PunchGo, DelayMs: uint32(half.Milliseconds())}})
	ps.at = now.Add(half)
}

func (a *Agent) onPunch(p *signaling.Punch, now time.Time) {
	if p == nil {
		return
	}
	ps := &a.punch
	switch p.Phase {
	case signaling.PunchPing:
		if a.pongs < maxPongs {
			a.pongs++
			a.out.send(signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: p.Seq, Phase: signaling.PunchPong}})
		}
	case signaling.PunchPong:
		if p.Seq != ps.seq || ps.ping.IsZero() || ps.rtt != 0 {
			return
		}
		ps.rtt = max(now.Sub(ps.ping), time.Millisecond)
		a.maybeStartPunchSync(now)
	case signaling.PunchGo:
		if ps.at.IsZero() {
			ps.at = now
		}
	}
}

// punchReady reports whether S-O checks may start, and when to look again.
func (a *Agent) punchReady(now time.Time) (bool, time.Time) {
	ps := &a.punch
	if !ps.at.IsZero() {
		return !now.Before(ps.at), ps.at
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
	a.punch.started = true
	for _, p := range a.cl.pairs {
		if p.local.TCPType == candidate.SO && (p.state == stateWaiting || p.state == stateFrozen) {
			a.startCheck(p, now)
		}
	}
}
