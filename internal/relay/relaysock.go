package relay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	turn "github.com/pion/turn/v5"

	"github.com/icetcp/icetcp/internal/limits"
	"github.com/icetcp/icetcp/tcpso"
)

var (
	errUDPNotOffered = errors.New("relay: UDP relaying is not offered (REQUESTED-TRANSPORT must be TCP, RFC 6062)")
	errQuota         = errors.New("relay: allocation quota reached")
	errNoPort        = errors.New("relay: no free relay port")
)

// relayGen is the RelayAddressGenerator pion calls for relay sockets. It
// replaces pion's generators for three reasons: they open relay listeners
// with SO_REUSEPORT on a random port without remembering which ports they
// gave out, so two allocations can share one port and split its incoming
// connections; they dial peers with no timeout and with the relayed IP as
// the local address, which fails when RelayIP is a NAT's address; and they
// cannot enforce the quota and the peer policy, which need the user and the
// peer's port.
type relayGen struct{ s *Server }

func (relayGen) Validate() error { return nil }

func (relayGen) AllocatePacketConn(turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	return nil, nil, errUDPNotOffered
}

func (g relayGen) AllocateListener(conf turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return g.s.openRelay(conf)
}

func (g relayGen) AllocateConn(conf turn.AllocateConnConfig) (net.Conn, error) {
	return g.s.dialPeer(conf)
}

// openRelay opens the TCP listener of a new allocation on a free port of the
// range, bound with SO_REUSEPORT so Connect can dial from the same port
// (RFC 6062 §5.2: the local endpoint is the relayed transport address).
func (s *Server) openRelay(conf turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, nil, ErrServerClosed
	case (conf.Network == "tcp4") != s.relayIP.Is4():
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("relay: %s allocation requested; the relay address %s is of the other family", conf.Network, s.relayIP)
	case s.users[conf.UserID] >= s.cfg.MaxAllocationsPerUser:
		s.mu.Unlock()
		s.stats.quota.Add(1)
		return nil, nil, fmt.Errorf("%w for %q", errQuota, conf.UserID)
	case s.allocs >= s.cfg.MaxAllocations:
		s.mu.Unlock()
		s.stats.totalQuota.Add(1)
		return nil, nil, fmt.Errorf("%w: %d in all", errQuota, s.cfg.MaxAllocations)
	}
	s.users[conf.UserID]++ // reserved; released by the listener's Close or below
	s.allocs++
	relayIP, bindIP := s.relayIP, s.bindIP
	s.mu.Unlock()

	for range portTries {
		port := s.reservePort()
		if port == 0 {
			continue
		}
		ln, err := listenRelay(s.ctx, netip.AddrPortFrom(bindIP, port))
		if err != nil {
			s.unreservePort(port)
			continue
		}
		r := &relayListener{
			s: s, ln: ln, user: conf.UserID,
			relay: netip.AddrPortFrom(relayIP, port),
			bind:  netip.AddrPortFrom(bindIP, port),
		}
		s.mu.Lock()
		delete(s.reserved, port)
		if s.closed {
			s.mu.Unlock()
			ln.Close()
			s.releaseUser(conf.UserID)
			return nil, nil, ErrServerClosed
		}
		s.relays[port] = r
		s.pionWG.Add(1) // pion's accept goroutine for r, until Accept reports the close
		s.mu.Unlock()
		return r, net.TCPAddrFromAddrPort(r.relay), nil
	}
	s.releaseUser(conf.UserID)
	return nil, nil, fmt.Errorf("%w in %d-%d after %d tries", errNoPort, s.cfg.MinPort, s.cfg.MaxPort, portTries)
}

// reservePort picks a random port of the range that no allocation holds or
// is opening; 0 when the pick is taken.
func (s *Server) reservePort() uint16 {
	lo, hi := int(s.cfg.MinPort), int(s.cfg.MaxPort)
	port := uint16(lo + rand.IntN(hi-lo+1))
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.relays[port]; taken {
		return 0
	}
	if _, taken := s.reserved[port]; taken {
		return 0
	}
	s.reserved[port] = struct{}{}
	return port
}

func (s *Server) unreservePort(port uint16) {
	s.mu.Lock()
	delete(s.reserved, port)
	s.mu.Unlock()
}

func (s *Server) releaseUser(user string) {
	s.mu.Lock()
	if s.users[user]--; s.users[user] <= 0 {
		delete(s.users, user)
	}
	s.allocs--
	s.mu.Unlock()
}

// relayListener is an allocation's relayed transport address. Accept
// applies the peer policy and the per-allocation bound of connections
// waiting for ConnectionBind before pion sees a connection; pion then checks
// the allocation's permissions (RFC 6062 §5.3).
type relayListener struct {
	s           *Server
	ln          *net.TCPListener
	relay, bind netip.AddrPort // what peers are told; where the socket is bound
	user        string
	pending     atomic.Int32 // peer connections not yet bound
	closed      atomic.Bool
	closeOnce   sync.Once
	exitOnce    sync.Once

	// Under s.mu: until when each permission lasts. perms counts the peer
	// IPs pion holds a permission for (at most MaxPermissions); exact are
	// the own relayed addresses CreatePermission named with their port:
	// the only other allocations of this relay that may connect here.
	perms map[netip.Addr]time.Time
	exact map[netip.AddrPort]time.Time
}

// permitIP counts a permission for ip until the given time; false when
// ip is new and the allocation holds MaxPermissions unexpired ones.
func (r *relayListener) permitIP(ip netip.Addr, until time.Time) bool {
	now := until.Add(-permissionLifetime)
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.perms == nil {
		r.perms = make(map[netip.Addr]time.Time)
	}
	if _, ok := r.perms[ip]; !ok && len(r.perms) >= r.s.cfg.MaxPermissions {
		for k, t := range r.perms {
			if now.After(t) {
				delete(r.perms, k)
			}
		}
		if len(r.perms) >= r.s.cfg.MaxPermissions {
			return false
		}
	}
	r.perms[ip] = until
	return true
}

// permitExact records permissions for these own relayed addresses, port
// included, until the given time; new ones beyond MaxPermissions are
// dropped (pion's permission for the relay's IP stays, but no other
// allocation gets in through it).
func (r *relayListener) permitExact(aps []netip.AddrPort, until time.Time) {
	now := until.Add(-permissionLifetime)
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.exact == nil {
		r.exact = make(map[netip.AddrPort]time.Time)
	}
	for _, ap := range aps {
		if _, ok := r.exact[ap]; !ok && len(r.exact) >= r.s.cfg.MaxPermissions {
			for k, t := range r.exact {
				if now.After(t) {
					delete(r.exact, k)
				}
			}
			if len(r.exact) >= r.s.cfg.MaxPermissions {
				r.s.stats.permissions.Add(1)
				continue
			}
		}
		r.exact[ap] = until
	}
}

// permitsLocked reports whether the allocation at ap, another one of
// this relay, may connect to r: r permitted exactly that address. Called
// under s.mu.
func (r *relayListener) permitsLocked(ap netip.AddrPort, now time.Time) bool {
	until, ok := r.exact[ap]
	return ok && !now.After(until)
}

func (r *relayListener) Accept() (net.Conn, error) {
	var retry limits.AcceptRetry
	for {
		c, err := r.ln.AcceptTCP()
		if err != nil {
			if r.closed.Load() || errors.Is(err, net.ErrClosed) {
				r.exitOnce.Do(r.s.pionWG.Done)
				return nil, err
			}
			// pion deletes the allocation on any Accept error; a
			// transient one (EMFILE) must not do that. The server's
			// Close ends the wait; this allocation's own Close closes
			// the listener, which the next Accept sees.
			r.s.log.Warnf("relay %s: accept: %v; retrying", r.relay, err)
			retry.Wait(r.s.ctx.Done())
			continue
		}
		retry.Reset()
		peer, fromRelay := r.s.presentPeer(c.RemoteAddr())
		if err := r.admit(peer, fromRelay); err != nil {
			r.s.log.Debugf("relay %s: inbound: %v", r.relay, err)
			reset(c)
			continue
		}
		if p := r.s.newPeerConn(c, r, peer); p != nil {
			return p, nil
		}
		reset(c)
	}
}

// admit decides on a peer connection to r before pion sees it: the peer
// policy; for another allocation of this relay, r's exact permission for
// it (issue 14: with a permission for the relay's IP, any user's
// allocation could connect, and fill the slots below); and the bound of
// connections waiting for ConnectionBind.
func (r *relayListener) admit(peer netip.AddrPort, fromRelay bool) error {
	if err := r.s.policy.checkAddr(peer, r.s); err != nil {
		r.s.stats.peer.Add(1)
		return err
	}
	if fromRelay {
		r.s.mu.Lock()
		ok := r.permitsLocked(peer, r.s.cfg.Now())
		r.s.mu.Unlock()
		if !ok {
			r.s.stats.peer.Add(1)
			return forbidden(peer, "another allocation of this relay that this one did not permit by address and port")
		}
	}
	if r.pending.Load() >= maxPendingPerAllocation {
		r.s.stats.quota.Add(1)
		return fmt.Errorf("relay: from %s: %d connections wait for ConnectionBind already", peer, maxPendingPerAllocation)
	}
	return nil
}

func (r *relayListener) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		err = r.ln.Close()
		r.s.mu.Lock()
		if r.s.relays[r.relay.Port()] == r {
			delete(r.s.relays, r.relay.Port())
		}
		r.s.mu.Unlock()
		r.s.releaseUser(r.user)
	})
	return err
}

func (r *relayListener) Addr() net.Addr { return net.TCPAddrFromAddrPort(r.relay) }

// dialPeer opens a Connect's peer data connection from the allocation's
// relayed port (RFC 6062 §5.2). pion calls it on a lane of the control
// connection (lanes.go), for up to connectTimeout; the connection's other
// requests go on meanwhile.
func (s *Server) dialPeer(conf turn.AllocateConnConfig) (net.Conn, error) {
	peer := addrPortOf(conf.RemoteAddr)
	if err := s.policy.checkAddr(peer, s); err != nil {
		s.stats.peer.Add(1)
		s.log.Debugf("connect for %q: %v", conf.UserID, err)
		return nil, err
	}
	local := addrPortOf(conf.LocalAddr)
	s.mu.Lock()
	r := s.relays[local.Port()]
	target := peer
	t := s.relayLocked(peer)
	self := r != nil && t == r
	// Another allocation here is reached only when it permitted this one
	// by address and port, and has room for a connection: otherwise the
	// Connect fails as one to a port nobody listens on does (447), so that
	// live relayed ports cannot be told from dead ones either.
	closedToUs := t != nil && r != nil && (!t.permitsLocked(r.relay, s.cfg.Now()) || t.pending.Load() >= maxPendingPerAllocation)
	if t != nil {
		// Go to its socket, not out to RelayIP (which may be a NAT's
		// address that does not hairpin).
		target = dialable(t.bind, s.relayIP)
	}
	s.mu.Unlock()
	switch {
	case r == nil:
		return nil, fmt.Errorf("relay: connect to %s: no allocation on relayed port %d", peer, local.Port())
	case self:
		s.stats.peer.Add(1)
		return nil, forbidden(peer, "the allocation's own relayed address (a loop)")
	case closedToUs:
		s.stats.peer.Add(1)
		return nil, forbidden(peer, "not an allocation of this relay that permitted this one")
	}
	if r.pending.Load() >= maxPendingPerAllocation {
		s.stats.quota.Add(1)
		return nil, fmt.Errorf("relay: connect to %s: %d connections wait for ConnectionBind already", peer, maxPendingPerAllocation)
	}
	ctx, cancel := context.WithTimeout(s.ctx, connectTimeout)
	defer cancel()
	c, err := tcpso.Dial(ctx, r.bind, target)
	if err != nil {
		s.log.Debugf("connect for %q to %s: %v", conf.UserID, peer, err)
		return nil, fmt.Errorf("relay: connect to %s: %w", peer, err)
	}
	if r.closed.Load() {
		// Deallocated while it connected (the Refresh no longer waits
		// for the Connect): the peer connection would have no owner.
		c.Close()
		return nil, fmt.Errorf("relay: connect to %s: the allocation was deleted meanwhile", peer)
	}
	p := s.newPeerConn(c, r, peer)
	if p == nil {
		c.Close()
		return nil, ErrServerClosed
	}
	return p, nil
}

// dialable turns a wildcard bind address into one to connect to.
func dialable(bind netip.AddrPort, relayIP netip.Addr) netip.AddrPort {
	if !bind.Addr().IsUnspecified() {
		return bind
	}
	if relayIP.Is4() {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), bind.Port())
	}
	return netip.AddrPortFrom(netip.IPv6Loopback(), bind.Port())
}
