// Package memnet is an in-memory TCP network for tests: listeners,
// connections with half-close and deadlines, simultaneous open, and hosts
// that answer unsolicited SYNs the way NATs do (RST or silence). Everything
// blocks on channels and timers only, so code that runs on it can be tested
// under testing/synctest with virtual time.
//
// It models behaviour, not packets: a simultaneous open between two punches
// that are in flight at the same time yields one connection whose ends both
// punches return, as crossing SYNs do on a real network.
package memnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/icetcp/icetcp/internal/wait"
	"github.com/icetcp/icetcp/tcpso"
)

// Inbound is what a host does with a SYN nobody asked for.
type Inbound int

const (
	// Open: a listener on the port accepts it; no listener means RST.
	Open Inbound = iota
	// Refuse: RST, as a NAT without a mapping for it (the Linux default).
	Refuse
	// Drop: silence, as a NAT or firewall that drops it (RFC 5382 REQ-4).
	Drop
)

// Network is one in-memory network. The zero value is not usable; call New.
type Network struct {
	// Flight is how long a SYN is in flight: a punch whose SYN meets the
	// peer's within it crosses (simultaneous open). Zero means 1ms.
	Flight time.Duration
	// Delay, when not nil, gives events on the network a duration: how
	// long a connect takes to be answered (key "dial ..."), how long an
	// established connection waits before its listener's Accept sees it
	// ("accept ..."), and how long each write takes to reach the reader
	// ("write ...", delivered in order per direction, FIN behind the
	// data). A key names its event by kind, addresses and a sequence
	// number, so a function of the key (a seeded hash) gives the same
	// timing to the same event from run to run, whatever the order in
	// which goroutines ask. Set it before the network is used. nil: every
	// event is instantaneous.
	Delay func(key string) time.Duration
	// Hosts names addresses for LookupNetIP (an in-memory DNS); set it
	// before the network is used.
	Hosts map[string][]netip.Addr

	mu        sync.Mutex // guards following
	listeners map[netip.AddrPort]*Listener
	known     map[netip.Addr]bool // addresses that exist (have listened)
	inbound   map[netip.Addr]Inbound
	punches   map[route]*punch // SYNs in flight, by local→remote
	conns     map[*Conn]struct{}
	stalled   map[netip.Addr]bool
	nats      map[netip.Addr]*NAT // by public address
	behind    map[netip.Addr]*NAT // by private host address
	nextPort  map[netip.Addr]uint16
	seq       map[string]int // events per key prefix, for Delay's keys
}

type route struct{ local, remote netip.AddrPort }

// punch is a SYN in flight that a crossing SYN may meet.
type punch struct {
	local netip.AddrPort // the puncher's own (private) address
	got   chan *Conn     // capacity 1: the end for the puncher when met
}

// New returns an empty network.
func New() *Network {
	return &Network{
		listeners: map[netip.AddrPort]*Listener{},
		known:     map[netip.Addr]bool{},
		inbound:   map[netip.Addr]Inbound{},
		punches:   map[route]*punch{},
		conns:     map[*Conn]struct{}{},
		stalled:   map[netip.Addr]bool{},
		nextPort:  map[netip.Addr]uint16{},
		seq:       map[string]int{},
	}
}

// SetInbound sets how ip treats unsolicited SYNs (default Open).
func (n *Network) SetInbound(ip netip.Addr, in Inbound) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.inbound[ip] = in
	n.known[ip] = true
}

// Stall makes every connection to or from ip, present and future, swallow
// what is written to it: a path that silently died.
func (n *Network) Stall(ip netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stalled[ip] = true
	for c := range n.conns {
		if addrOf(c.local).Addr() == ip || addrOf(c.remote).Addr() == ip {
			c.out.stall()
			c.in.stall()
		}
	}
}

// StallOpen makes every connection to or from ip that is open now
// swallow what is written to it, while new connections work: a relay or
// a middlebox whose state for those connections got stuck.
func (n *Network) StallOpen(ip netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.conns {
		if addrOf(c.local).Addr() == ip || addrOf(c.remote).Addr() == ip {
			c.out.stall()
			c.in.stall()
		}
	}
}

// Reset breaks every connection to or from ip as a NAT that lost its
// state does: both ends read ECONNRESET after what they had.
func (n *Network) Reset(ip netip.Addr) {
	n.mu.Lock()
	var hit []*Conn
	for c := range n.conns {
		if addrOf(c.local).Addr() == ip || addrOf(c.remote).Addr() == ip {
			hit = append(hit, c)
		}
	}
	n.mu.Unlock()
	for _, c := range hit {
		c.Reset()
	}
}

// Conns is the number of open connection ends: zero after everyone closed.
func (n *Network) Conns() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.conns)
}

func (n *Network) flight() time.Duration {
	if n.Flight > 0 {
		return n.Flight
	}
	return time.Millisecond
}

// Listen opens a listener; port 0 picks one. shared is accepted and
// ignored: in memory every port can be shared.
func (n *Network) Listen(_ context.Context, addr netip.AddrPort, _ bool) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr.Port() == 0 {
		addr = netip.AddrPortFrom(addr.Addr(), n.port(addr.Addr()))
	}
	if _, ok := n.listeners[addr]; ok {
		return nil, fmt.Errorf("memnet: listen %s: address in use", addr)
	}
	l := &Listener{n: n, addr: addr, q: make(chan *Conn, 128), done: make(chan struct{})}
	n.listeners[addr] = l
	n.known[addr.Addr()] = true
	return l, nil
}

// port picks a free port on ip. Ports are counted per address, so that
// one host's ports do not depend on what other hosts did first.
func (n *Network) port(ip netip.Addr) uint16 {
	p := n.nextPort[ip]
	if p == 0 {
		p = 40000
	}
	p++
	n.nextPort[ip] = p
	return p
}

// delayLocked asks Delay how long the event named by kind and what takes;
// the key gets a sequence number per (kind, what).
func (n *Network) delayLocked(kind, what string) time.Duration {
	if n.Delay == nil {
		return 0
	}
	k := kind + " " + what
	n.seq[k]++
	return max(n.Delay(fmt.Sprintf("%s #%d", k, n.seq[k])), 0)
}

// Dial makes one connect attempt.
func (n *Network) Dial(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	n.mu.Lock()
	if local.Port() == 0 {
		local = netip.AddrPortFrom(local.Addr(), n.port(local.Addr()))
	}
	d := n.delayLocked("dial", local.String()+"->"+remote.String())
	c, silent, err := n.connectLocked(local, remote)
	n.mu.Unlock()
	if (err != nil || c != nil) && d > 0 {
		// The answer (SYN-ACK or RST) takes d to come back.
		if serr := wait.Sleep(ctx, d); serr != nil {
			if c != nil {
				c.Close()
			}
			return nil, opErr(local, remote, fmt.Errorf("%w: %w", errTimeout, serr))
		}
	}
	if err != nil {
		return nil, err
	}
	if c != nil {
		return c, nil
	}
	select { // the SYN is dropped: nothing but the caller's deadline ends it
	case <-ctx.Done():
	case <-silent:
	}
	return nil, opErr(local, remote, fmt.Errorf("%w: %w", errTimeout, ctx.Err()))
}

// connectLocked delivers a SYN from local to remote: a connection, a
// refusal, or (all nil) silence.
func (n *Network) connectLocked(local, remote netip.AddrPort) (*Conn, <-chan struct{}, error) {
	if n.inUseLocked(local, remote) {
		return nil, nil, opErr(local, remote, errInUse)
	}
	ext := n.external(local, remote) // the SYN leaves through our NAT
	if n.unreachable(local, remote) {
		return nil, nil, nil
	}
	dialed := remote
	if to, ok := n.eifLocked(remote); ok {
		remote = to // through the far NAT's endpoint-independent filter
	} else {
		switch n.natInbound(remote) {
		case Drop:
			return nil, nil, nil
		case Refuse:
			n.refusedLocked(local, dialed)
			return nil, nil, opErr(local, remote, errRefused)
		}
	}
	in := n.inbound[remote.Addr()]
	l := n.listeners[remote]
	switch {
	case in == Drop || (l == nil && !n.known[remote.Addr()]):
		return nil, nil, nil
	case in == Refuse || l == nil:
		n.refusedLocked(local, dialed)
		return nil, nil, opErr(local, dialed, errRefused)
	}
	mine, theirs := n.pairLocked(local, remote, ext)
	mine.remote = net.TCPAddrFromAddrPort(dialed)
	if d := n.delayLocked("accept", local.String()+"->"+remote.String()); d > 0 {
		// Established now, seen by Accept later: a loaded server.
		time.AfterFunc(d, func() {
			select {
			case l.q <- theirs:
			case <-l.done:
				theirs.Close()
			default:
				theirs.Close()
			}
		})
		return mine, nil, nil
	}
	select {
	case l.q <- theirs:
		return mine, nil, nil
	case <-l.done:
	default: // backlog full: as a SYN dropped by a full queue
	}
	delete(n.conns, mine)
	delete(n.conns, theirs)
	return nil, nil, opErr(local, remote, errRefused)
}

// pairLocked makes a connection between local (seen by the other end as
// localExt) and remote.
func (n *Network) pairLocked(local, remote, localExt netip.AddrPort) (*Conn, *Conn) {
	a, b := newPair(net.TCPAddrFromAddrPort(local), net.TCPAddrFromAddrPort(remote))
	b.remote = net.TCPAddrFromAddrPort(localExt)
	a.n, b.n = n, n
	if n.Delay != nil {
		a.out.delay = n.writeDelay(local.String() + "->" + remote.String())
		b.out.delay = n.writeDelay(remote.String() + "->" + local.String())
	}
	n.conns[a], n.conns[b] = struct{}{}, struct{}{}
	if n.stalled[local.Addr()] || n.stalled[remote.Addr()] {
		a.out.stall()
		b.out.stall()
	}
	return a, b
}

func hasDeadline(ctx context.Context) bool {
	_, ok := ctx.Deadline()
	return ok
}

// SimultaneousOpen punches on p's schedule: a SYN that meets the peer's
// punch in flight crosses it; otherwise the peer's inbound behaviour decides
// (a listener accepts, Refuse answers RST, Drop keeps silent until the
// attempt times out). As package tcpso does, an attempt answers each RST
// with a new SYN at once while its rush lasts, so a peer that starts a
// little later still meets a SYN of ours in flight.
// It returns the attempt that connected (1 for the first).
func (n *Network) SimultaneousOpen(ctx context.Context, p tcpso.Punch) (net.Conn, int, error) {
	s := p.Schedule
	attempts := max(s.Attempts, 0) // 0: until ctx ends, as tcpso's punch
	if d := s.Duration; d > 0 || !hasDeadline(ctx) {
		if d <= 0 {
			d = tcpso.DefaultDuration
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d+max(p.Delay, 0)+max(time.Until(p.Start), 0))
		defer cancel()
	}
	interval := s.Interval
	if interval == 0 {
		interval = tcpso.DefaultInterval
	}
	timeout := s.AttemptTimeout
	if timeout == 0 {
		timeout = tcpso.DefaultAttemptTimeout
	}
	delay := max(p.Delay, 0)
	if !p.Start.IsZero() {
		delay += time.Until(p.Start)
	}
	if err := wait.Sleep(ctx, delay); err != nil {
		return nil, 0, opErr(p.Local, p.Remote, err)
	}
	if p.OnStart != nil {
		p.OnStart(time.Now())
	}
	rush := s.Rush
	switch {
	case rush == 0:
		rush = tcpso.DefaultRush
	case rush < 0:
		rush = 0
	}
	var last error
	for i := 0; attempts == 0 || i < attempts; i++ {
		begin := time.Now()
		var c net.Conn
		var err error
		for {
			c, err = n.punchOnce(ctx, p.Local, p.Remote, timeout)
			if p.OnTry != nil {
				p.OnTry(tryOf(i+1, c, err))
			}
			if c != nil || ctx.Err() != nil || !errors.Is(err, errRefused) || time.Since(begin) >= rush {
				break
			}
		}
		if c != nil {
			return c, i + 1, nil
		}
		if ctx.Err() != nil {
			return nil, 0, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), last)
		}
		last = err
		if attempts == 0 || i < attempts-1 {
			if err := wait.Sleep(ctx, interval); err != nil {
				return nil, 0, opErr(p.Local, p.Remote, err)
			}
		}
	}
	return nil, 0, fmt.Errorf("memnet: simultaneous open %s->%s: %d attempts: %w", p.Local, p.Remote, attempts, last)
}

// tryOf is what one SYN of a punch met, as tcpso reports it.
func tryOf(attempt int, c net.Conn, err error) tcpso.Try {
	t := tcpso.Try{Attempt: attempt, Err: err}
	switch {
	case c != nil:
		t.Outcome = tcpso.OutcomeConnected
	case errors.Is(err, errRefused):
		t.Outcome = tcpso.OutcomeRefused
	case errors.Is(err, errInUse):
		t.Outcome = tcpso.OutcomeBusy
	case errors.Is(err, errTimeout):
		t.Outcome = tcpso.OutcomeTimedOut
	default:
		t.Outcome = tcpso.OutcomeCanceled
	}
	return t
}

func (n *Network) punchOnce(ctx context.Context, local, remote netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	n.mu.Lock()
	if n.inUseLocked(local, remote) {
		// The peer's SYN already made this connection (accepted on our
		// listener): a second socket cannot have the same 4-tuple.
		n.mu.Unlock()
		return nil, opErr(local, remote, errInUse)
	}
	ext := n.external(local, remote)
	if theirs, ok := n.punches[route{remote, ext}]; ok { // SYNs cross
		delete(n.punches, route{remote, ext})
		mine, peer := n.pairLocked(local, theirs.local, ext)
		mine.remote = net.TCPAddrFromAddrPort(remote)
		theirs.got <- peer
		n.mu.Unlock()
		return mine, nil
	}
	nat := n.natInbound(remote)
	_, eif := n.eifLocked(remote)
	if eif || (nat == Open && !n.unreachable(local, remote) && n.inbound[remote.Addr()] == Open && n.listeners[remote] != nil) {
		c, _, err := n.connectLocked(local, remote)
		n.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	me := &punch{local: local, got: make(chan *Conn, 1)}
	key := route{ext, remote}
	n.punches[key] = me
	refused := nat == Refuse || (nat == Open && n.inbound[remote.Addr()] != Drop && n.known[remote.Addr()] && !n.unreachable(local, remote))
	n.mu.Unlock()
	flight := timeout
	if refused {
		flight = min(timeout, n.flight()) // answered with RST when it lands
	}
	t := time.NewTimer(flight)
	defer t.Stop()
	var err error
	select {
	case c := <-me.got:
		return c, nil
	case <-t.C:
		err = errTimeout
		if refused {
			err = errRefused
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	n.mu.Lock()
	if n.punches[key] == me {
		delete(n.punches, key)
	}
	if errors.Is(err, errRefused) {
		n.refusedLocked(local, remote)
	}
	n.mu.Unlock()
	select { // met at the last moment
	case c := <-me.got:
		return c, nil
	default:
	}
	return nil, opErr(local, remote, err)
}

// inUseLocked reports an open connection from local to remote.
func (n *Network) inUseLocked(local, remote netip.AddrPort) bool {
	if local.Port() == 0 {
		return false
	}
	for c := range n.conns {
		if addrOf(c.local) == local && addrOf(c.remote) == remote {
			return true
		}
	}
	return false
}

// writeDelay is the delay of the writes of one direction.
func (n *Network) writeDelay(what string) func() time.Duration {
	return func() time.Duration {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.delayLocked("write", what)
	}
}

// LookupNetIP resolves host from Hosts (or an IP literal); other names
// are not found, as on a network without DNS.
func (n *Network) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	if ips := n.Hosts[host]; len(ips) > 0 {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (n *Network) forget(c *Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.conns, c)
}

func opErr(local, remote netip.AddrPort, err error) error {
	return &net.OpError{Op: "dial", Net: "tcp", Source: net.TCPAddrFromAddrPort(local), Addr: net.TCPAddrFromAddrPort(remote), Err: err}
}

func addrOf(a *net.TCPAddr) netip.AddrPort { return a.AddrPort() }

// Listener is an in-memory listener.
type Listener struct {
	n    *Network
	addr netip.AddrPort
	q    chan *Conn
	done chan struct{}
	once sync.Once
}

// Accept returns the next connection, or net.ErrClosed after Close.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.q:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting; connections not yet accepted are reset.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.n.mu.Lock()
		delete(l.n.listeners, l.addr)
		close(l.done)
		l.n.mu.Unlock()
		for {
			select {
			case c := <-l.q:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *Listener) Addr() net.Addr { return net.TCPAddrFromAddrPort(l.addr) }
