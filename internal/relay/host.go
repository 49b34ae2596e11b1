package relay

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// addListener records l (at ap) and, for the first listener, fixes the relay
// and bind addresses: relayed addresses carry Config.RelayIP or else this
// listener's IP; relay sockets bind to this listener's IP (the unspecified
// address of RelayIP's family for a wildcard listener). Called under mu.
func (s *Server) addListener(l net.Listener, ap netip.AddrPort) error {
	if s.closed {
		return ErrServerClosed
	}
	ip := ap.Addr()
	if !s.relayIP.IsValid() {
		if ip.IsUnspecified() {
			return fmt.Errorf("relay: listener %s has no specific IP to give relayed addresses; set Config.RelayIP", ap)
		}
		s.relayIP = ip
		s.ownIPs[ip] = struct{}{}
	}
	if !s.bindIP.IsValid() {
		switch {
		case !ip.IsUnspecified() && ip.Is4() != s.relayIP.Is4():
			return fmt.Errorf("relay: listener %s and RelayIP %s are of different families", ap, s.relayIP)
		case !ip.IsUnspecified():
			s.bindIP = ip
		case s.relayIP.Is4():
			s.bindIP = netip.IPv4Unspecified()
		default:
			s.bindIP = netip.IPv6Unspecified()
		}
	}
	if ip.IsUnspecified() {
		s.wildcard = true
	} else {
		s.ownIPs[ip] = struct{}{}
	}
	s.listeners[l] = ap
	return nil
}

// ownRefresh is how often this host's interface addresses are listed
// again: an address added while the relay runs becomes own within it.
const ownRefresh = 30 * time.Second

// addOwnAddrs makes Config.OwnAddrs' IPs and every address of this host's
// interfaces own: the relay never connects to its host's services on any
// of them (issue 14: the RFC 5780 alternate IP, public in production, and
// other ports of the relay's own IP were reachable). Called from New.
func (s *Server) addOwnAddrs() {
	for _, ap := range s.own {
		if ip := ap.Addr().Unmap(); !ip.IsUnspecified() {
			s.ownIPs[ip] = struct{}{}
		}
	}
	s.addInterfaceIPs(time.Now())
}

// addInterfaceIPs adds the addresses of this host's interfaces to the own
// IPs. Called under mu (or before the server runs).
func (s *Server) addInterfaceIPs(now time.Time) {
	s.ownAt = now
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		s.log.Warnf("listing interface addresses: %v; only RelayIP, the listeners and loopback count as this host", err)
		return
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			s.ownIPs[p.Addr().Unmap().WithZone("")] = struct{}{}
		}
	}
}

func (s *Server) removeListener(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

// The hostView methods, for the peer policy.

func (s *Server) isOwnIP(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ownIPLocked(ip.Unmap())
}

func (s *Server) ownIPLocked(ip netip.Addr) bool {
	ip = ip.WithZone("")
	if now := time.Now(); now.Sub(s.ownAt) > ownRefresh {
		s.addInterfaceIPs(now)
	}
	if _, ok := s.ownIPs[ip]; ok {
		return true
	}
	// The STUN server's own listeners (the RFC 5780 alternates): its lock
	// is a leaf, never held while it calls the relay.
	for _, la := range s.stunAddrs() {
		if la.Addr().Unmap() == ip {
			return true
		}
	}
	// Behind a wildcard listener the whole loopback range reaches it.
	return s.wildcard && ip.IsLoopback()
}

func (s *Server) isRelayAddr(ap netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relayLocked(ap) != nil
}

// relayLocked returns the relay listener that ap reaches: a live relayed
// port on one of this host's addresses. Called under mu.
func (s *Server) relayLocked(ap netip.AddrPort) *relayListener {
	r := s.relays[ap.Port()]
	if r == nil || !s.ownIPLocked(ap.Addr().Unmap()) {
		return nil
	}
	return r
}

// isListenAddr reports a listening address of this relay or of the other
// services Config.OwnAddrs names.
func (s *Server) isListenAddr(ap netip.AddrPort) bool {
	ip := ap.Addr().Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	match := func(la netip.AddrPort) bool {
		return la.Port() == ap.Port() && (la.Addr().Unmap() == ip || (la.Addr().IsUnspecified() && s.ownIPLocked(ip)))
	}
	for _, la := range s.listeners {
		if match(la) {
			return true
		}
	}
	for _, la := range s.own {
		if match(la) {
			return true
		}
	}
	for _, la := range s.stunAddrs() {
		if match(la) {
			return true
		}
	}
	return false
}

// stunAddrs are where the STUN server listens besides the relay's own
// listeners (it is served those through the relay).
func (s *Server) stunAddrs() []netip.AddrPort {
	if s.stun == nil {
		return nil
	}
	addrs := s.stun.ListenAddrs()
	// The relay's hand-over listener has no address of its own.
	return slices.DeleteFunc(addrs, func(ap netip.AddrPort) bool { return ap.Port() == 0 })
}

// relayAt returns the allocation whose relayed address is ap, or nil.
func (s *Server) relayAt(ap netip.AddrPort) *relayListener {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.relays[ap.Port()]; r != nil && r.relay == ap {
		return r
	}
	return nil
}

// presentPeer is the address a relayed peer connection is shown with, and
// whether it comes from another allocation of this relay. Such a
// connection arrives from the bind address of its relay socket; pion and
// the clients know that allocation by its relayed address (RelayIP:port),
// so it is shown as that.
func (s *Server) presentPeer(a net.Addr) (netip.AddrPort, bool) {
	ap := addrPortOf(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.relayLocked(ap); r != nil {
		return r.relay, true
	}
	return ap, false
}
