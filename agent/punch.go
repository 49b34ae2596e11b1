package agent

import (
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/signaling"
)

// Simultaneous open needs no start signal: a tcp-so pair is punched as
// soon as it exists, and package tcpso's rush (a new SYN at once after
// every RST, for a quarter second) keeps our NAT's mapping open until the
// peer's SYN crosses ours, whichever side starts first: measured in the
// NAT lab, peers up to 20 ms apart connect on the first attempt. Both sides
// form the pair when the other's server-reflexive candidate arrives, at
// about the same time, so the punch timing rides on the candidate
// exchange and the half round trip of a DCUtR-style "go" is saved.
//
// The controlling agent still measures the signaling round trip (ping,
// pong) as soon as the peer's credentials arrive: it sizes how long a
// working relayed pair waits for a direct one.

// punchState is the signaling round-trip measurement, and when each
// punch's first SYN left. Owned by the loop.
type punchState struct {
	seq  uint32
	ping time.Time
	rtt  time.Duration
	// sending is when a pair's punch sent its first SYN, for the check
	// attempt that started it (tcpso.Punch.OnStart).
	sending map[*pair]punchStart
}

type punchStart struct {
	attempt uint64 // the pair's check attempt
	at      time.Time
}

// punchStarted is the tcpso.Punch.OnStart of pair p's check attempt: it
// tells the loop when the punch's first SYN left. On a busy host that can
// be well after the check started (the punching goroutine waits for a
// CPU), and a likely punch's wait before the relay wins counts from it
// (likelyUntil). It must not block the punch: the loop is told from a
// goroutine of its own.
func (a *Agent) punchStarted(p *pair, attempt uint64) func(time.Time) {
	return func(at time.Time) {
		a.goTracked(func() {
			a.post(func(now time.Time) {
				if p.attempt != attempt || p.state != stateInProgress {
					return
				}
				if a.punch.sending == nil {
					a.punch.sending = map[*pair]punchStart{}
				}
				a.punch.sending[p] = punchStart{attempt: attempt, at: at}
				a.tr.pair(TracePunchStarted, p, at, nil)
				a.onPredictPunchStarted(p, now)
			})
		})
	}
}

// sendingSince is when the punch of p's current check sent its first SYN;
// false while it has not reported one.
func (a *Agent) sendingSince(p *pair) (time.Time, bool) {
	if p.local.TCPType == candidate.Active {
		// A connect's SYN leaves when its check starts.
		return p.started, p.state == stateInProgress
	}
	s, ok := a.punch.sending[p]
	if !ok || s.attempt != p.attempt {
		return time.Time{}, false
	}
	return s.at, true
}

// startPunchPing measures the signaling round trip as soon as the peer's
// credentials are known (the controlling agent sends "ping").
func (a *Agent) startPunchPing(now time.Time) {
	if !a.role.controlling || a.punch.seq != 0 {
		return
	}
	a.punch.seq++
	a.punch.ping = now
	a.sig.out.send(signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: a.punch.seq, Phase: signaling.PunchPing}})
}

func (a *Agent) onPunch(p *signaling.Punch, now time.Time) {
	if p == nil {
		return
	}
	ps := &a.punch
	switch p.Phase {
	case signaling.PunchPing:
		if a.count.pongs < maxPongs {
			a.count.pongs++
			a.sig.out.send(signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: p.Seq, Phase: signaling.PunchPong}})
		}
	case signaling.PunchPong:
		if p.Seq == ps.seq && !ps.ping.IsZero() && ps.rtt == 0 {
			ps.rtt = max(now.Sub(ps.ping), time.Millisecond)
		}
	case signaling.PunchGo:
		// The peer punches our predicted ports (predict.go). Agents that
		// synchronise their punches sent "go" too: ours start when the
		// pair exists, so there it needs nothing.
		a.onPredictGo(p.Seq, now)
	}
}
