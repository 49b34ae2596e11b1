package stuntcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/icetcp/icetcp/internal/limits"
)

// The SYN probe, server side. What a NAT does with an unsolicited inbound
// SYN (RST, silence, or pass it on: RFC 5382 §5 REQ-4/REQ-5, RFC 4787
// filtering) can only be seen from outside, so a client may ask in a
// Binding request (SYN-PROBE) and the server connects back. Abuse limits,
// all enforced here:
//   - the target is always the requesting connection's own source address
//     (the attribute carries no address), so the server cannot be aimed at
//     a third party; the connection's handshake proved the source;
//   - one probe per connection;
//   - per source (IPv4 address, IPv6 /64) a token bucket: ProbeBurst probes
//     at once, then one per ProbeInterval;
//   - at most ProbeConcurrency probes in flight server-wide, beyond which
//     requests are declined at once rather than queued;
//   - a probe is one connect() with ProbeTimeout, closed at once with RST
//     (no TIME_WAIT left on the server); no byte is sent.
// A declined probe is reported as such (ProbeDeclined with the reason).

// Probe defaults, used for zero fields.
const (
	DefaultProbeTimeout     = time.Second
	DefaultProbeConcurrency = 16
	DefaultProbeBurst       = 4
	DefaultProbeInterval    = 5 * time.Second
	// maxProbeSources bounds the rate limiter's table.
	maxProbeSources = 1 << 16
)

// synProbe runs the probe a Binding request on a connection from remote to
// local asked for; probed tells whether the connection had its probe.
func (s *Server) synProbe(remote, local netip.AddrPort, probed *bool) SYNProbe {
	p := s.synProbeOnce(remote, local, probed)
	s.stats.countProbe(p.Outcome)
	return p
}

func (s *Server) synProbeOnce(remote, local netip.AddrPort, probed *bool) SYNProbe {
	declined := func(d ProbeDecline) SYNProbe { return SYNProbe{Outcome: ProbeDeclined, Decline: d} }
	if *probed {
		return declined(DeclineRepeat)
	}
	*probed = true
	from, ok := otherIP(s.Primary, s.Alternate, local.Addr())
	if !ok || !remote.IsValid() || from.Is4() != remote.Addr().Unmap().Is4() {
		return declined(DeclineNoAlternate)
	}
	if !s.probeRate.allow(limits.SourceKey(remote.Addr()), time.Now()) {
		s.refusals.Note(reasonProbeRate, fmt.Sprintf("SYN probe for %s: over %d per %v", remote, s.probeBurst(), s.probeInterval()))
		return declined(DeclineRate)
	}
	select {
	case s.probeSlots <- struct{}{}:
		defer func() { <-s.probeSlots }()
	default:
		s.refusals.Note(reasonProbeBusy, fmt.Sprintf("SYN probe for %s: %d probes in flight", remote, cap(s.probeSlots)))
		return declined(DeclineBusy)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.probeTimeout())
	defer cancel()
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, 0))}
	start := time.Now()
	c, err := d.DialContext(ctx, network(from), netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()).String())
	elapsed := time.Since(start)
	if c != nil {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	o := probeOutcome(err)
	s.log.Debugf("SYN probe %s -> %s: %s after %v (%v)", from, remote, o, elapsed, err)
	return SYNProbe{Outcome: o, Elapsed: elapsed}
}

// probeOutcome classifies a probe connect's error.
func probeOutcome(err error) ProbeOutcome {
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
		// A reset during connect() came after the SYN-ACK (a reset in
		// answer to the SYN is ECONNREFUSED): the handshake got through,
		// and the far end closed at once.
		return ProbeConnected
	case errors.Is(err, syscall.ECONNREFUSED):
		return ProbeRefused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return ProbeTimedOut
	}
	return ProbeUnreachable
}

func (s *Server) probeTimeout() time.Duration { return orDefault(s.ProbeTimeout, DefaultProbeTimeout) }
func (s *Server) probeInterval() time.Duration {
	return orDefault(s.ProbeInterval, DefaultProbeInterval)
}
func (s *Server) probeBurst() int { return orDefault(s.ProbeBurst, DefaultProbeBurst) }

// orDefault is v, or def when v is zero or negative.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
