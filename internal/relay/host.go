package relay

import (
	"fmt"
	"net"
	"net/netip"
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
		if !s.wildcard {
			s.wildcard = true
			s.addInterfaceIPs()
		}
	} else {
		s.ownIPs[ip] = struct{}{}
	}
	s.listeners[l] = ap
	return nil
}

// addInterfaceIPs makes every address of this host's interfaces an own
// address: a wildcard listener answers on all of them. Called under mu.
func (s *Server) addInterfaceIPs() {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		s.log.Warnf("listing interface addresses: %v; only RelayIP and loopback count as this host", err)
		return
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			s.ownIPs[p.Addr().Unmap()] = struct{}{}
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
	if _, ok := s.ownIPs[ip]; ok {
		return true
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

func (s *Server) isListenAddr(ap netip.AddrPort) bool {
	ip := ap.Addr().Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, la := range s.listeners {
		if la.Port() != ap.Port() {
			continue
		}
		if la.Addr() == ip || (la.Addr().IsUnspecified() && s.ownIPLocked(ip)) {
			return true
		}
	}
	return false
}

// presentPeer is the address a relayed peer connection is shown with. A
// connection from another allocation of this relay arrives from the bind
// address of its relay socket; pion and the clients know that allocation
// by its relayed address (RelayIP:port), so it is shown as that.
func (s *Server) presentPeer(a net.Addr) netip.AddrPort {
	ap := addrPortOf(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.relayLocked(ap); r != nil {
		return r.relay
	}
	return ap
}
