package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/natcheck"
	"github.com/icetcp/icetcp/signaling"
)

// NAT classes. During gathering the agent measures its own NAT's TCP
// behaviour against its STUN server (internal/natcheck: RFC 5780 mapping
// over TCP, port allocation, what an unsolicited SYN meets) and sends the
// class to the peer. With both classes, a simultaneous open between our
// host S-O candidate and the peer's server-reflexive one is judged before
// it is tried: a symmetric NAT on either side makes it hopeless, so it is
// not punched and a relayed pair need not wait for it; a likely one is
// given its punch before the relay wins.

// natCheckTimeout bounds the measurement (a NAT that drops probe SYNs
// costs the server's one-second probe timeout).
const natCheckTimeout = 5 * time.Second

// natCheckFunc measures the local NAT; tests inject classes through it.
type natCheckFunc func(ctx context.Context, server string) (natcheck.Class, error)

// natState is what the agent knows of both NATs. Owned by the loop.
type natState struct {
	local, remote         natcheck.Class
	haveLocal, haveRemote bool
}

// startNATCheck measures our NAT against the first STUN server, beside
// gathering (it does not delay end-of-candidates).
func (a *Agent) startNATCheck() {
	if a.cfg.DisableNATCheck || len(a.cfg.STUNServers) == 0 {
		return
	}
	server := a.cfg.STUNServers[0]
	a.goTracked(func() {
		ctx, cancel := context.WithTimeout(a.ctx, natCheckTimeout)
		defer cancel()
		class, err := a.natCheck(ctx, server)
		a.post(func(now time.Time) { a.onNATCheck(class, err, now) })
	})
}

// hostNATCheck runs natcheck from a port of its own on the first local
// address of the server's family.
func (a *Agent) hostNATCheck(ctx context.Context, server string) (natcheck.Class, error) {
	for _, ln := range a.g.listeners {
		sa, err := resolveSTUN(ctx, server, ln.cand.Addr.Addr())
		if err != nil {
			continue
		}
		res, err := natcheck.Check(ctx, natcheck.Config{
			Server: sa, Local: netip.AddrPortFrom(ln.cand.Addr.Addr(), 0), Dial: a.net.Dial,
			LoggerFactory: a.cfg.LoggerFactory,
		})
		if err != nil {
			return natcheck.Class{}, err
		}
		return res.Class(), nil
	}
	return natcheck.Class{}, errors.New("agent: NAT check: no local address of the STUN server's family")
}

func (a *Agent) onNATCheck(class natcheck.Class, err error, now time.Time) {
	if err != nil {
		a.log.Debugf("NAT check: %v", err)
		return
	}
	a.nat.local, a.nat.haveLocal = class, true
	if a.sel.pair == nil {
		a.sig.out.send(signaling.Message{Type: signaling.TypeNAT, NAT: class.String()})
	}
	a.judgePunches(now)
}

func (a *Agent) onRemoteNAT(s string, now time.Time) {
	class, err := natcheck.ParseClass(s)
	if err != nil {
		a.warn(fmt.Errorf("agent: peer's NAT class: %w", err), now)
		return
	}
	a.nat.remote, a.nat.haveRemote = class, true
	a.judgePunches(now)
}

// punchVerdict judges a pair by both NAT classes: only a host S-O to a
// server-reflexive S-O pair is a NAT traversal the classes can judge.
func (a *Agent) punchVerdict(p *pair) (natcheck.Viability, string) {
	if !a.nat.haveLocal || !a.nat.haveRemote || p.local.TCPType != candidate.SO || p.remote.Type != candidate.ServerReflexive {
		return natcheck.ViabilityUnknown, ""
	}
	return natcheck.SimultaneousOpenViable(a.nat.local, a.nat.remote)
}

// errHopeless fails a punch that the NAT classes rule out.
var errHopeless = errors.New("agent: NAT classes rule out simultaneous open")

// judgePunches fails every S-O pair both classes rule out, in flight or
// not, unless AwaitDirect asks to behave as if there were no classes.
func (a *Agent) judgePunches(now time.Time) {
	if a.cfg.AwaitDirect || a.sel.pair != nil {
		return
	}
	for _, p := range a.cl.pairs {
		if p.state == stateSucceeded || p.state == stateFailed {
			continue
		}
		if v, why := a.punchVerdict(p); v == natcheck.Unlikely {
			a.failPair(p, fmt.Errorf("%w: %s", errHopeless, why), now)
		}
	}
}

// likelyUntil reports whether the direct pair q is likely to succeed, and
// until when it deserves a wait: a simultaneous open both classes call
// likely gets its punch, the first attempts of which decide nearly every
// success (DCUtR: 97.6 % on the first). The wait, max(6 RTTs, 1 s), counts
// from the punch's first SYN (tcpso.Punch.OnStart), not from the check's
// start: on a busy host the punching goroutine can wait for a CPU, and a
// punch that had not sent yet lost to the relay's cap (issue 7: one trial
// in each 0 ms lab run with a CPU-heavy job beside it). Until its first
// SYN leaves, a punch is treated as not started, like a pair still
// waiting; the check's deadline bounds it all.
//
// What it costs a pair that will never connect, which natcheck cannot
// tell from a likely one (two no-simopen NATs: crossing SYNs dropped,
// which looks like a silent NAT): the time between the check's start and
// its first SYN, normally well under a millisecond (5 ms when
// punchOrderDelay applies), on top of the second it always paid.
func (a *Agent) likelyUntil(q *pair, rtt time.Duration, now time.Time) (time.Time, bool) {
	if v, _ := a.punchVerdict(q); v != natcheck.Likely {
		return time.Time{}, false
	}
	start := now // not started, or not sending yet
	if at, ok := a.sendingSince(q); ok && q.state == stateInProgress {
		start = at
		if at.Before(q.started) {
			start = q.started
		}
	}
	return start.Add(min(max(6*rtt, time.Second), a.cfg.CheckTimeout)), true
}

// punchOrderDelay is how much later the side behind a silently dropping
// NAT sends its first SYN when the peer's NAT answers RST: the first SYN
// to reach an RST-answering NAT is then never the peer's (it would be
// refused and cost a retry), while an early SYN into a dropping NAT only
// waits. Measured in the lab: both orders connect on the first attempt,
// this one with fewer SYNs.
const punchOrderDelay = 5 * time.Millisecond

func (a *Agent) punchDelay(p *pair) time.Duration {
	if p.local.TCPType != candidate.SO || !a.nat.haveLocal || !a.nat.haveRemote {
		return 0
	}
	if a.nat.local.InboundSYN == natcheck.SYNDropped && a.nat.remote.InboundSYN == natcheck.SYNRefused {
		return punchOrderDelay
	}
	return 0
}
