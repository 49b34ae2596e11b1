package relay

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	turn "github.com/pion/turn/v5"

	"github.com/icetcp/icetcp/internal/limits"
	"github.com/icetcp/icetcp/internal/stuntcp"
)

// ErrServerClosed is returned by Serve and ServeTLS after Close.
var ErrServerClosed = errors.New("relay: server closed")

// Server is the TURN relay with TCP allocations, sharing its port with a
// STUN Binding server. Create it with New, give it listeners with Serve or
// ServeTLS, and end it with Close.
//
// A Connect whose peer is forbidden by IP alone (loopback, private,
// special-purpose) is answered 403 by pion's permission handler; one that
// is forbidden only by its port (the relay's own STUN/TURN port, another
// service of the relay's host) is refused when the relay would dial it, and
// pion answers that with 447, the only code its dial hook can produce.
type Server struct {
	cfg    Config
	log    logging.LeveledLogger
	stats  counters
	policy peerPolicy
	auth   authenticator
	stun   *stuntcp.Server
	pion   *turn.Server
	turnLn *chanListener // connections for pion
	stunLn *chanListener // connections for the STUN server
	ctx    context.Context
	cancel context.CancelFunc // ends relay dials at Close
	nonces *nonceKeeper
	// pionNonce is the latest nonce pion put in an answer: what a request
	// with a good nonce of the relay's is given for pion to validate.
	pionNonce atomic.Pointer[string]
	admitted  *limits.Counter // connections on the listeners, in all and per source
	refusals  *limits.RefusalLog

	mu        sync.Mutex // guards following
	closed    bool
	relayIP   netip.Addr // what relayed addresses carry; fixed by Config or the first Serve
	bindIP    netip.Addr // where relay sockets bind (may be unspecified)
	listeners map[net.Listener]netip.AddrPort
	ownIPs    map[netip.Addr]struct{}
	wildcard  bool // a listener on an unspecified address: all interface and loopback addresses are own
	conns     map[*clientConn]struct{}
	byRemote  map[netip.AddrPort]*clientConn
	relays    map[uint16]*relayListener // live relayed ports
	reserved  map[uint16]struct{}       // ports being opened
	peers     map[pairKey]*peerConn
	users     map[string]int // allocations per user ID, reserved before the socket is opened
	allocs    int            // allocations of all users, reserved likewise
	cids      map[uint32]cidEntry
	cidSweep  int              // len(cids) at which expired entries are swept
	own       []netip.AddrPort // Config.OwnAddrs
	ownAt     time.Time        // when the interface addresses were last listed
	wg        sync.WaitGroup   // own goroutines; Add under mu while !closed
	pionWG    sync.WaitGroup   // pion's accept loop, each connection handed to it, each relay listener; Add under mu while !closed

	closeDone  chan struct{} // closed when the first Close has finished
	closeErr   error         // its result
	allocsGone chan struct{} // signalled when the allocation count drops to zero

	hooks    testHooks
	laneIdle time.Duration // lanes.go
}

// testHooks let tests wait for events that have no other observable moment.
// Set before any goroutine starts; nil fields are skipped.
type testHooks struct {
	allocationDeleted func(userID string)
	laneIdle          time.Duration // zero: laneIdle
	laneRetired       func()        // a Connect lane retired
}

// New validates cfg and starts the TURN and STUN servers; connections reach
// them once Serve or ServeTLS is called. Close releases everything.
func New(cfg Config) (*Server, error) { return newServer(cfg, testHooks{}) }

func newServer(cfg Config, hooks testHooks) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		log:        cfg.LoggerFactory.NewLogger("icetcp-relay"),
		policy:     peerPolicy{allowLoopback: cfg.AllowLoopbackPeers, allowPrivate: cfg.AllowPrivatePeers},
		stun:       cfg.STUN,
		relayIP:    cfg.RelayIP,
		listeners:  make(map[net.Listener]netip.AddrPort),
		ownIPs:     make(map[netip.Addr]struct{}),
		conns:      make(map[*clientConn]struct{}),
		byRemote:   make(map[netip.AddrPort]*clientConn),
		admitted:   limits.NewCounter(cfg.MaxConns, cfg.MaxConnsPerSource),
		nonces:     newNonceKeeper(cfg.NonceLifetime),
		cids:       make(map[uint32]cidEntry),
		cidSweep:   64,
		own:        cfg.OwnAddrs,
		refusals:   limits.NewRefusalLog(cfg.LoggerFactory.NewLogger("icetcp-relay").Warnf, 0),
		relays:     make(map[uint16]*relayListener),
		reserved:   make(map[uint16]struct{}),
		peers:      make(map[pairKey]*peerConn),
		users:      make(map[string]int),
		hooks:      hooks,
		laneIdle:   cmp.Or(hooks.laneIdle, laneIdle),
		closeDone:  make(chan struct{}),
		allocsGone: make(chan struct{}, 1),
	}
	if cfg.RelayIP.IsValid() {
		s.ownIPs[cfg.RelayIP] = struct{}{}
	}
	s.addOwnAddrs()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.auth = authenticator{
		realm: cfg.Realm, users: cfg.Users, keys: longTermKeys(cfg.Users, cfg.Realm), secret: cfg.Secret, now: cfg.Now, log: s.log,
		refuse: func() { s.stats.auth.Add(1) },
	}
	addr := &net.TCPAddr{IP: net.IPv4zero}
	s.pionWG.Add(1) // pion's accept loop, until turnLn reports its close
	s.turnLn = newChanListener(addr, s.pionWG.Done)
	s.stunLn = newChanListener(addr, nil)
	s.pion, err = turn.NewServer(turn.ServerConfig{
		ListenerConfigs: []turn.ListenerConfig{{
			Listener:              s.turnLn,
			RelayAddressGenerator: relayGen{s},
			PermissionHandler:     s.permit,
		}},
		LoggerFactory:       cfg.LoggerFactory,
		Realm:               cfg.Realm,
		AuthHandler:         s.auth.handle,
		QuotaHandler:        s.quotaOK,
		EventHandler:        s.events(),
		PermissionTimeout:   permissionLifetime,
		StrictAddressFamily: true, // no REQUESTED-ADDRESS-FAMILY means IPv4 (RFC 6156 §4.2)
	})
	if err != nil {
		s.cancel()
		s.turnLn.Close()
		s.pionWG.Done()
		return nil, fmt.Errorf("relay: start pion TURN server: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// Returns when stunLn closes; the error only repeats that.
		_ = s.stun.Serve(s.stunLn)
	}()
	return s, nil
}

// Serve accepts plain TCP connections on l until Close (then it returns
// ErrServerClosed) or until l fails. It may be called for several
// listeners; the first one fixes the relay IP when Config.RelayIP is zero.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, nil) }

// ServeTLS is Serve for TURN over TLS ("turns:"): each connection's TLS
// handshake must end, and its first STUN message arrive, within
// FirstMessageTimeout. Relayed bytes then go through TLS on the client side
// (no splice).
func (s *Server) ServeTLS(l net.Listener, tc *tls.Config) error {
	if tc == nil || (len(tc.Certificates) == 0 && tc.GetCertificate == nil && tc.GetConfigForClient == nil) {
		l.Close()
		return errors.New("relay: ServeTLS needs a tls.Config with a certificate")
	}
	return s.serve(l, tc)
}

// Close closes the listeners, every connection, allocation and relayed
// connection, and the STUN server, then waits until the goroutines of the
// relay and of pion have returned. Later and concurrent calls wait for the
// first and return its result.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return s.closeErr
	}
	s.closed = true
	var closers []func() error
	for l := range s.listeners {
		closers = append(closers, l.Close)
	}
	for c := range s.conns {
		closers = append(closers, c.shut)
	}
	for _, r := range s.relays {
		closers = append(closers, r.Close)
	}
	for _, p := range s.peers {
		closers = append(closers, p.Close)
	}
	s.mu.Unlock()

	// Outside the lock: closing calls back into forget/release, which lock.
	s.cancel()
	var errs []error
	if err := s.pion.Close(); err != nil {
		errs = append(errs, err)
	}
	s.stunLn.Close()
	for _, c := range closers {
		if err := c(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if err := s.stun.Close(); err != nil {
		errs = append(errs, err)
	}
	s.wg.Wait()
	if err := s.waitPion(); err != nil {
		errs = append(errs, err)
	}
	s.refusals.Close()
	if err := errors.Join(errs...); err != nil {
		s.closeErr = fmt.Errorf("relay: close: %w", err)
	}
	close(s.closeDone)
	return s.closeErr
}

// waitPion waits, at most closeWait, for pion's goroutines: each has
// signalled its last blocking step (a connection's final Close, a relay
// listener's failed Accept, the accept loop's end), and the allocation
// count reaching zero means every deletion, the last thing a relay
// listener's goroutine does, has run.
func (s *Server) waitPion() error {
	deadline := time.NewTimer(closeWait)
	defer deadline.Stop()
	done := make(chan struct{})
	go func() { s.pionWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-deadline.C:
		return fmt.Errorf("pion's connection and relay goroutines still running %v after Close", closeWait)
	}
	for s.stats.allocations.Load() > 0 {
		select {
		case <-s.allocsGone:
		case <-deadline.C:
			return fmt.Errorf("%d allocations not deleted %v after Close", s.stats.allocations.Load(), closeWait)
		}
	}
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// permit is pion's PermissionHandler (CreatePermission, Connect): the
// peer IP alone (ports are checked when the relay dials or accepts), and
// for CreatePermission the allocation's bound of permitted IPs (issue 14:
// 240,000 permissions on one allocation took 143 MB).
func (s *Server) permit(client net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	if err := s.policy.checkIP(ip, s); err != nil {
		s.stats.peer.Add(1)
		s.log.Debugf("%v: %v", client, err)
		return false
	}
	c := s.connFrom(client)
	if c == nil || !c.permitting(ip) {
		return true
	}
	r := c.alloc.Load()
	if r == nil {
		return true // pion finds no allocation and refuses anyway
	}
	if !r.permitIP(ip, s.cfg.Now().Add(permissionLifetime)) {
		s.stats.permissions.Add(1)
		s.refusals.Note("permissions", fmt.Sprintf("%v: allocation %s has %d peer IPs permitted; %s refused", client, r.relay, s.cfg.MaxPermissions, ip))
		return false
	}
	return true
}

// quotaOK is pion's QuotaHandler: it answers 486 when the user, or the
// relay, is at its limit. openRelay enforces the same limits again,
// race-free (a concurrent Allocate that slips past here gets 508 there).
func (s *Server) quotaOK(userID, _ string, src net.Addr) bool {
	s.mu.Lock()
	userOK := s.users[userID] < s.cfg.MaxAllocationsPerUser
	totalOK := s.allocs < s.cfg.MaxAllocations
	s.mu.Unlock()
	switch {
	case !userOK:
		s.stats.quota.Add(1)
		s.refusals.Note("user-quota", fmt.Sprintf("%v: user %q has %d allocations; 486", src, userID, s.cfg.MaxAllocationsPerUser))
	case !totalOK:
		s.stats.totalQuota.Add(1)
		s.refusals.Note("total-quota", fmt.Sprintf("%v: the relay has %d allocations; 486", src, s.cfg.MaxAllocations))
	}
	return userOK && totalOK
}

// events counts allocations and tells control connections whether they
// hold one (those that do are exempt from the idle timeout).
func (s *Server) events() turn.EventHandler {
	return turn.EventHandler{
		OnAuth: func(src, _ net.Addr, _, username, _, method string, ok bool) {
			if !ok {
				s.stats.auth.Add(1)
				s.log.Debugf("%v: %s by %q: wrong password", src, method, username)
			}
		},
		OnAllocationCreated: func(src, _ net.Addr, _, userID, _ string, relayed net.Addr, _ int) {
			s.stats.allocations.Add(1)
			s.stats.allocationsTotal.Add(1)
			if c := s.connFrom(src); c != nil {
				c.alloc.Store(s.relayAt(addrPortOf(relayed)))
				c.allocationAdded()
			}
			s.log.Debugf("%v: allocation %v for %q", src, relayed, userID)
		},
		OnAllocationDeleted: func(src, _ net.Addr, _, userID, _ string) {
			if s.stats.allocations.Add(-1) == 0 {
				select {
				case s.allocsGone <- struct{}{}:
				default:
				}
			}
			if c := s.connFrom(src); c != nil {
				c.alloc.Store(nil)
				c.allocationRemoved(s.cfg.IdleTimeout)
			}
			s.log.Debugf("%v: allocation of %q deleted", src, userID)
			if s.hooks.allocationDeleted != nil {
				s.hooks.allocationDeleted(userID)
			}
		},
	}
}

func (s *Server) connFrom(a net.Addr) *clientConn {
	ap := addrPortOf(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byRemote[ap]
}

// addrPortOf converts a TCP address; other kinds give the zero value.
func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
