package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

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
	// started is when our measurement started; done when it ended. A
	// local class that needs port prediction is known (and sent) early,
	// before the SYN probe's outcome (onNATEarly).
	started, done time.Time
}

// natCheckRunning: our NAT is being measured.
func (a *Agent) natCheckRunning() bool { return !a.nat.started.IsZero() && a.nat.done.IsZero() }

// startNATCheck measures our NAT against the first STUN server, beside
// gathering (it does not delay end-of-candidates), or takes the class a
// NATCache shared by many agents knows (Config.NAT, or the Mux's).
func (a *Agent) startNATCheck() {
	if a.cfg.DisableNATCheck || len(a.cfg.STUNServers) == 0 {
		return
	}
	server := a.cfg.STUNServers[0]
	a.nat.started = time.Now() // before the loop runs: gathering starts it
	cache := a.cfg.NAT
	if cache == nil && a.cfg.Mux != nil {
		cache = &a.cfg.Mux.nat
	}
	start := time.Now()
	a.goTracked(func() {
		measure := func(ctx context.Context) (natcheck.Class, error) {
			ctx, cancel := context.WithTimeout(ctx, natCheckTimeout)
			defer cancel()
			if a.seams.natCheck != nil {
				return a.seams.natCheck(ctx, server)
			}
			return a.hostNATCheck(ctx, server)
		}
		// The timeout is the measurement's: an agent that takes the class
		// from the cache (or waits for the agent measuring it) makes no
		// context of its own, whose registration would leave a children
		// map and a Done channel in a.ctx for the agent's life (0.4 KiB a
		// session behind a Mux, bench/scale).
		var class natcheck.Class
		var err error
		if cache != nil {
			class, err = cache.class(a.ctx, natKey{server: server, local: a.natLocal()}, start, measure)
		} else {
			class, err = measure(a.ctx)
		}
		a.post(func(now time.Time) { a.onNATCheck(class, err, now) })
	})
}

// natLocal is the address the NAT is measured from: our first listener's,
// else the Mux's (a server with no listener of its own).
func (a *Agent) natLocal() netip.Addr {
	if len(a.g.listeners) > 0 {
		return a.g.listeners[0].cand.Addr.Addr()
	}
	if !a.g.muxOn {
		return netip.Addr{}
	}
	return a.cfg.Mux.Addr().Addr()
}

// hostNATCheck runs natcheck from a port of its own on the first local
// address of the server's family.
func (a *Agent) hostNATCheck(ctx context.Context, server string) (natcheck.Class, error) {
	locals := make([]netip.Addr, 0, len(a.g.listeners)+1)
	for _, ln := range a.g.listeners {
		locals = append(locals, ln.cand.Addr.Addr())
	}
	if a.g.muxOn {
		locals = append(locals, a.cfg.Mux.Addr().Addr())
	}
	for _, ip := range locals {
		sa, err := a.resolve(ctx, server, ip)
		if err != nil {
			continue
		}
		res, err := natcheck.Check(ctx, natcheck.Config{
			Server: sa, Local: netip.AddrPortFrom(ip, 0), Dial: a.seams.net.Dial,
			LoggerFactory: a.cfg.LoggerFactory, Mapped: a.natEarly,
		})
		if err != nil {
			return natcheck.Class{}, err
		}
		return res.Class(), nil
	}
	return natcheck.Class{}, errors.New("agent: NAT check: no local address of the STUN server's family")
}

func (a *Agent) onNATCheck(class natcheck.Class, err error, now time.Time) {
	a.nat.done = now
	defer a.maybePredict(now)
	if err != nil {
		a.log.Debugf("NAT check: %v", err)
		return
	}
	a.nat.local, a.nat.haveLocal = class, true
	a.tr.trace(TraceEvent{Kind: TraceNATClass, Time: now, NAT: class.String(), Local: true})
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
	a.tr.trace(TraceEvent{Kind: TraceNATClass, Time: now, NAT: class.String()})
	a.judgePunches(now)
	a.onPredictClass(now)
}

// natEarly is natcheck's Config.Mapped: a NAT that needs port prediction
// is known before the SYN probe ends (up to a second later behind a NAT
// that drops it), and the prediction starts from there.
func (a *Agent) natEarly(res natcheck.Result) {
	class := res.Class()
	a.post(func(now time.Time) {
		if a.nat.haveLocal || a.state == StateFailed || a.state == StateClosed {
			return
		}
		a.pred.early = &class
		if !class.NeedsPrediction() {
			a.maybePredict(now) // the peer's round, if any, is ours to punch
			return
		}
		// Known now, and the peer's too: its punches wait for our rounds.
		a.onNATCheck(class, nil, now)
		a.nat.done = time.Time{} // the probe still runs
	})
}
