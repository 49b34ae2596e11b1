package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/tcpso"
)

// listener is a passive or S-O candidate's listening socket.
type listener struct {
	l      net.Listener
	cand   candidate.Candidate
	shared bool // dialers may bind its port (STUN queries from it)
}

// gather makes the host candidates (RFC 6544 §5.1): per address an active
// placeholder, a passive listener and an S-O socket. It runs before the loop
// starts.
func (a *Agent) gather(ctx context.Context) error {
	addrs := a.cfg.Addrs
	if addrs == nil {
		var err error
		if addrs, err = interfaceAddrs(a.cfg.IncludeLoopback); err != nil {
			return err
		}
	}
	if len(addrs) == 0 && (a.cfg.Mux == nil || a.cfg.DisablePassive) {
		return errors.New("agent: gather: no usable local address")
	}
	addrs = interleave(addrs)
	a.g.family = netip.IPv4Unspecified()
	if len(addrs) > 0 && addrs[0].Unmap().Is6() {
		a.g.family = netip.IPv6Unspecified()
	}
	for i, ip := range addrs {
		ip = ip.Unmap()
		otherPref := uint16(max(8191-i, 0)) // distinct per address (RFC 6544 §4.2)
		if !a.cfg.DisableActive {
			a.addLocal(candidate.New(candidate.Host, candidate.Active, netip.AddrPortFrom(ip, candidate.ActivePort), netip.AddrPort{}, netip.Addr{}, otherPref))
		}
		if !a.cfg.DisablePassive && a.cfg.Mux == nil {
			// A passive port is shared too when STUN queries must leave
			// from it (RFC 6544 §5.2), where the system can share ports;
			// elsewhere it has no server-reflexive twin.
			shared := len(a.cfg.STUNServers) > 0 && (a.cfg.Network != nil || tcpso.PortSharing())
			if err := a.listen(ctx, ip, candidate.Passive, otherPref, shared); err != nil {
				return err
			}
		}
		// S-O needs a listener and dialers on one port; where the OS cannot
		// share ports (Windows) it is not offered.
		if !a.cfg.DisableSO && (a.cfg.Network != nil || tcpso.PortSharing()) {
			if err := a.listen(ctx, ip, candidate.SO, otherPref, true); err != nil {
				return err
			}
		}
	}
	if a.cfg.Mux != nil && !a.cfg.DisablePassive {
		a.g.muxOn = true
		a.addLocal(a.cfg.Mux.cand)
	}
	return nil
}

func (a *Agent) listen(ctx context.Context, ip netip.Addr, tt candidate.TCPType, otherPref uint16, shared bool) error {
	l, err := a.seams.net.Listen(ctx, netip.AddrPortFrom(ip, 0), shared)
	if err != nil {
		return fmt.Errorf("agent: gather %s %s: %w", tt, ip, err)
	}
	c := candidate.New(candidate.Host, tt, addrPortOf(l.Addr()), netip.AddrPort{}, netip.Addr{}, otherPref)
	a.g.listeners = append(a.g.listeners, &listener{l: l, cand: c, shared: shared})
	a.addLocal(c)
	return nil
}

func (a *Agent) addLocal(c candidate.Candidate) {
	a.g.locals = append(a.g.locals, c)
	for _, r := range a.peer.cands {
		a.pairUp(c, r)
	}
}

// interleave orders addresses IPv6 first and then alternating families
// (RFC 8421 §4), keeping the order within each family, so that their
// descending other-prefs interleave the families: a broken family costs
// one pacing slot at a time, not all the first ones.
func interleave(addrs []netip.Addr) []netip.Addr {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Unmap().Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for len(v4) > 0 || len(v6) > 0 {
		if len(v6) > 0 {
			out, v6 = append(out, v6[0]), v6[1:]
		}
		if len(v4) > 0 {
			out, v4 = append(out, v4[0]), v4[1:]
		}
	}
	return out
}

// interfaceAddrs lists addresses of interfaces that are up, without
// link-local ones (they need zones and rarely route).
func interfaceAddrs(loopback bool) ([]netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("agent: gather: %w", err)
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || (ifc.Flags&net.FlagLoopback != 0 && !loopback) {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			pfx, err := netip.ParsePrefix(ad.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() || (ip.IsLoopback() && !loopback) {
				continue
			}
			out = append(out, ip)
		}
	}
	return out, nil
}

func (a *Agent) closeListeners() {
	for _, ln := range a.g.listeners {
		ln.l.Close()
	}
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
