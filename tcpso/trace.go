package tcpso

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// TraceConfig configures Trace. Target is required; other zero values work.
type TraceConfig struct {
	// Local is the source address; the zero Addr lets the route choose.
	Local netip.Addr
	// Target is a server to trace toward, e.g. the STUN server. Never the
	// peer: probes that reach it open connections, and probes that reach
	// the peer's NAT would meet its RST.
	Target netip.AddrPort
	// Mapped is our server-reflexive address, if known: a hop answering
	// from it is our own NAT, whatever its address looks like.
	Mapped netip.Addr
	// MaxHops is the largest TTL probed; 0 means 8 (NATs are near).
	MaxHops int
	// Timeout bounds the whole trace; 0 means 1 s. Hops that have not
	// answered by then are reported without an address.
	Timeout time.Duration
}

// Hop is one TTL of a trace.
type Hop struct {
	TTL     int
	From    netip.Addr // who answered Time Exceeded; zero if nobody did
	Reached bool       // the probe reached the target (SYN-ACK or RST)
}

// Route is what Trace found.
type Route struct {
	Hops []Hop
	// PrimeTTL is the TTL for Punch.PrimeTTL: the first hop that answers
	// from a public address (not RFC 1918, RFC 6598 carrier-grade NAT,
	// loopback, link-local or Mapped), i.e. the first router beyond our
	// last NAT. A SYN with this TTL passes all our NATs and dies there. 0
	// when no such router answered before the target: no router separates
	// our NAT from the target, or routers stay silent; priming is then
	// not possible toward it.
	PrimeTTL int
}

// Trace sends TCP SYNs toward cfg.Target with TTL 1, 2, …, MaxHops at once
// and records who answers each with ICMP Time Exceeded (RFC 792, RFC 1812
// §5.3.1): a TCP traceroute. Linux only (it reads the ICMP source from the
// socket error queue); elsewhere it returns errors.ErrUnsupported.
func Trace(ctx context.Context, cfg TraceConfig) (Route, error) {
	target := unmap(cfg.Target)
	if !target.Addr().IsValid() || target.Port() == 0 {
		return Route{}, fmt.Errorf("tcpso: trace %s: target %w", target, errInvalidAddr)
	}
	if !primeSupported {
		return Route{}, fmt.Errorf("tcpso: trace %s: %w", target, errors.ErrUnsupported)
	}
	if cfg.MaxHops <= 0 {
		cfg.MaxHops = 8
	}
	if cfg.MaxHops > 255 {
		return Route{}, fmt.Errorf("tcpso: trace %s: MaxHops %d out of range 1..255", target, cfg.MaxHops)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	local := netip.AddrPortFrom(cfg.Local.Unmap(), 0)
	hops := make([]Hop, cfg.MaxHops)
	var wg sync.WaitGroup
	for i := range hops {
		hops[i].TTL = i + 1
		// The socket is made here, on the caller's thread (its network
		// namespace); only the waiting runs on other goroutines.
		pc, err := startPrimed(local, target, i+1)
		if err != nil {
			wg.Wait()
			return Route{}, fmt.Errorf("tcpso: trace %s: %w", target, err)
		}
		wg.Go(func() {
			c, err := pc.wait(ctx)
			var te *TimeExceededError
			switch {
			case err == nil:
				c.Close()
				hops[i].Reached = true
			case errors.As(err, &te):
				hops[i].From = te.From
			case classify(err, false) == OutcomeRefused:
				hops[i].Reached = true
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return Route{}, fmt.Errorf("tcpso: trace %s: %w", target, err)
	}
	return route(hops, cfg.Mapped.Unmap()), nil
}

// route trims hops after the target and picks the prime TTL.
func route(hops []Hop, mapped netip.Addr) Route {
	var r Route
	for _, h := range hops {
		r.Hops = append(r.Hops, h)
		if h.Reached {
			break
		}
		if r.PrimeTTL == 0 && h.From.IsValid() && public(h.From) && h.From != mapped {
			r.PrimeTTL = h.TTL
		}
	}
	return r
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598 shared address space

// public reports whether a is an address a NAT's inside would not use.
func public(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}
