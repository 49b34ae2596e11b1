package natcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/tcpso"
)

// Config configures Check. Only Server is required.
type Config struct {
	// Server is the STUN server's primary address (TCP).
	Server netip.AddrPort
	// Local is where the probes leave from. A zero Addr means any address
	// of the server's family; port 0 means a free port picked by the
	// kernel. All connections of the mapping test leave from this one
	// port (SO_REUSEADDR/SO_REUSEPORT, as tcpso.Dial sets them); the
	// allocation test uses the ports after it.
	Local netip.AddrPort
	// Timeout bounds the whole check; zero means DefaultTimeout (5 s).
	Timeout time.Duration
	// Dial opens one TCP connection from local to remote; nil means
	// tcpso.Dial. A seam for tests and for callers with their own sockets.
	Dial func(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error)
	// Mapped, when set, is called once the mapping and the allocation
	// pattern are known, with the Result so far (InboundSYN and Filtering
	// still unknown), before the SYN probe's outcome: behind a NAT that
	// drops the probe that comes up to a second later. An agent decides
	// on port prediction from it. It runs on Check's goroutine.
	Mapped func(Result)
	// NoListen means the caller already accepts connections on Local's
	// port (an agent's S-O or passive port), so Check opens no listener
	// of its own: a second listener in the port's SO_REUSEPORT group
	// would take a share of the caller's incoming connections. It needs a
	// fixed Local port. The SYN probe's connection then arrives at the
	// caller's listener and is closed by the server at once.
	NoListen bool
	// LoggerFactory makes the logger (scope "icetcp-natcheck"); nil means
	// logging.NewDefaultLoggerFactory().
	LoggerFactory logging.LoggerFactory
}

// DefaultTimeout bounds a check when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

const (
	// dialTimeout and queryTimeout bound one connect and one Binding
	// transaction, so an unreachable alternate costs a test, not the
	// check; probeAllowance is added to the transaction that carries the
	// SYN probe (the server's probe timeout is 1 s).
	dialTimeout    = 2 * time.Second
	queryTimeout   = 2 * time.Second
	probeAllowance = 1500 * time.Millisecond
	// acceptWait bounds how long after a "connected" probe report our
	// listener may take to hand over the connection.
	acceptWait = time.Second
	// allocSamples new connections make the allocation test; ports that
	// are busy are skipped, up to allocAttempts tries. allocStagger
	// spaces their SYNs (see allocation).
	allocSamples  = 5
	allocAttempts = allocSamples + 8
	allocStagger  = 2 * time.Millisecond
)

// ErrUnreachable means test I found no STUN server at Config.Server: the
// connection or the Binding transaction failed. Check returns it wrapped,
// with the cause.
var ErrUnreachable = errors.New("natcheck: STUN server unreachable")

// Check discovers the behaviour of the NAT between this host and
// cfg.Server over TCP: its mapping (RFC 5780 §4.3 tests I-III from one
// local port), port preservation, the allocation pattern of new ports, and
// what it does with an unsolicited inbound SYN (the server's SYN probe).
// Failures after test I leave their part Unknown and say why in
// Result.Notes; a failure of test I itself is an error wrapping
// ErrUnreachable. Check opens one listener and up to 8 connections and
// closes them all (with RST, so no TIME_WAIT blocks the ports) before it
// returns.
func Check(ctx context.Context, cfg Config) (Result, error) {
	start := time.Now()
	c, err := newChecker(cfg)
	if err != nil {
		return Result{}, err
	}
	res, err := c.run(ctx)
	res.Elapsed = time.Since(start)
	return res, err
}

// checker is one run of Check.
type checker struct {
	cfg    Config
	server netip.AddrPort
	bindIP netip.Addr // the Addr of Local, or the unspecified one
	log    logging.LeveledLogger
	dial   func(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error)

	mu    sync.Mutex // guards following
	conns []net.Conn
	obs   []Observation
	notes []string
}

func newChecker(cfg Config) (*checker, error) {
	server := netip.AddrPortFrom(cfg.Server.Addr().Unmap(), cfg.Server.Port())
	if !server.Addr().IsValid() || server.Port() == 0 || server.Addr().IsUnspecified() {
		return nil, fmt.Errorf("natcheck: server address %q is not a usable IP:port", cfg.Server)
	}
	bindIP := cfg.Local.Addr().Unmap()
	switch {
	case !bindIP.IsValid() && server.Addr().Is4():
		bindIP = netip.IPv4Unspecified()
	case !bindIP.IsValid():
		bindIP = netip.IPv6Unspecified()
	case bindIP.Is4() != server.Addr().Is4():
		return nil, fmt.Errorf("natcheck: local address %s and server %s are of different families", cfg.Local, server)
	}
	if cfg.NoListen && cfg.Local.Port() == 0 {
		return nil, errors.New("natcheck: NoListen needs a fixed local port (Config.Local)")
	}
	lf := cfg.LoggerFactory
	if lf == nil {
		lf = logging.NewDefaultLoggerFactory()
	}
	c := &checker{cfg: cfg, server: server, bindIP: bindIP, log: lf.NewLogger("icetcp-natcheck"), dial: cfg.Dial}
	if c.dial == nil {
		c.dial = func(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
			return tcpso.Dial(ctx, local, remote)
		}
	}
	return c, nil
}

func (c *checker) run(parent context.Context) (Result, error) {
	timeout := c.cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	defer c.closeAll()

	port := c.cfg.Local.Port()
	accepted := make(chan netip.AddrPort, 4)
	if !c.cfg.NoListen {
		// We own the port: a probe SYN that crosses the NAT completes a
		// handshake here instead of meeting our own kernel's RST, which
		// would look like the NAT's.
		l, err := tcpso.Listen(ctx, netip.AddrPortFrom(c.bindIP, port))
		if err != nil {
			return Result{}, fmt.Errorf("natcheck: %w", err)
		}
		port = uint16(l.Addr().(*net.TCPAddr).Port)
		done := make(chan struct{})
		go acceptAll(l, accepted, done)
		defer func() { l.Close(); <-done }()
	}

	// Test I. The SYN probe follows on the same connection, in a second
	// transaction: the server answers it only after the probe (up to a
	// second behind a NAT that drops it), and the mapping and allocation
	// tests need not wait for that.
	conn1, err := c.dialFrom(ctx, port, c.server)
	if busy(err) {
		return Result{}, fmt.Errorf("natcheck: port %d already has a connection to %s (the agent's own STUN connection?); "+
			"check from another port: %w", port, c.server, err)
	}
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s: %w", ErrUnreachable, c.server, err)
	}
	local := addrPortOf(conn1.LocalAddr())
	r1, err := c.binding(ctx, "I", conn1, false, queryTimeout)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	res := Result{Local: local, Mapped: r1.Mapped, PortPreserving: r1.Mapped.Port() == local.Port()}
	res.Server = Capabilities{Address: c.server, Origin: r1.Origin, Other: r1.Other, Software: r1.Software}
	if r1.Origin.IsValid() && r1.Origin != c.server {
		c.note(fmt.Sprintf("the server answers from %s: %s is a translated alias of it", r1.Origin, c.server))
	}
	probeDone := make(chan *stuntcp.SYNProbe, 1)
	go func() {
		// The probe targets conn1's source, the mapping test I saw: a
		// SYN that crosses the NAT reaches our listener on its port.
		r, err := c.binding(ctx, "probe", conn1, true, queryTimeout+probeAllowance)
		if err != nil {
			c.note(fmt.Sprintf("SYN probe: %v", err))
			probeDone <- nil
			return
		}
		probeDone <- r.Probe
	}()

	// The allocation test talks to the primary address only, so no filter
	// toward the alternate IP (where the probe comes from) is opened by
	// it. Tests II and III wait for it: on a NAT that allocates
	// sequentially, their new mappings would break its series.
	samples := c.allocation(ctx, local)
	var steps []int
	res.Allocation, res.Delta, steps = classifyAllocation(samples)
	if res.Allocation == Sequential && !allEqual(steps) {
		res.NoisySequence = true
		c.note(fmt.Sprintf("ports allocated in sequence with other connections in between (steps %v): "+
			"a busy NAT; the step is taken as %+d", steps, res.Delta))
	}
	if res.Allocation == AllocationUnknown {
		c.note(fmt.Sprintf("allocation pattern unknown: %d of %d new connections answered", len(samples), allocSamples))
	}
	var why string
	res.Mapping, why = classifyMapping(c.mappingTests(ctx, local, r1))
	c.note(why)
	if c.cfg.Mapped != nil && ctx.Err() == nil {
		c.cfg.Mapped(res)
	}

	var probe *stuntcp.SYNProbe
	select {
	case probe = <-probeDone:
	case <-ctx.Done():
	}
	res.Server.SYNProbe = probe != nil
	passed := c.cfg.NoListen
	if probe != nil && probe.Outcome == stuntcp.ProbeConnected && !passed {
		passed = waitAccepted(ctx, accepted)
	}
	res.InboundSYN, why = classifyInbound(probe, passed)
	c.note(why)
	res.Filtering = res.Class().Filtering()

	if err := parent.Err(); err != nil {
		return Result{}, fmt.Errorf("natcheck: %w", context.Cause(parent))
	}
	c.mu.Lock()
	res.Observations, res.Notes = c.obs, c.notes
	c.mu.Unlock()
	return res, nil
}

// mappingTests runs tests II and III (RFC 5780 §4.3) when test I's answer
// calls for them.
func (c *checker) mappingTests(ctx context.Context, local netip.AddrPort, r1 stuntcp.Response) mappingTests {
	t := mappingTests{local: local, i: r1.Mapped}
	if t.i == local {
		return t // no NAT: nothing to compare
	}
	if !r1.Other.IsValid() {
		t.iiWhy = "the server sent no OTHER-ADDRESS (it has no RFC 5780 alternate address)"
		return t
	}
	// "The alternate IP with the primary port": the port we dialled, which
	// differs from the server's own when we reached it through an alias.
	iiTo := netip.AddrPortFrom(r1.Other.Addr(), c.server.Port())
	var err error
	if t.ii, err = c.mappingTest(ctx, "II", local.Port(), iiTo); err != nil {
		t.iiWhy = fmt.Sprintf("test II to the alternate address %s failed: %v", iiTo, err)
		return t
	}
	if t.ii == t.i {
		return t
	}
	if r1.Other == iiTo {
		t.iiiWhy = "the alternate port is the port dialled"
		return t
	}
	if t.iii, err = c.mappingTest(ctx, "III", local.Port(), r1.Other); err != nil {
		t.iiiWhy = fmt.Sprintf("test III to %s failed: %v", r1.Other, err)
	}
	return t
}

// mappingTest connects from port to to and returns the mapped address.
func (c *checker) mappingTest(ctx context.Context, test string, port uint16, to netip.AddrPort) (netip.AddrPort, error) {
	conn, err := c.dialFrom(ctx, port, to)
	if err != nil {
		c.observe(Observation{Test: test, Local: netip.AddrPortFrom(c.bindIP, port), Server: to, Err: err.Error()})
		return netip.AddrPort{}, err
	}
	r, err := c.binding(ctx, test, conn, false, queryTimeout)
	return r.Mapped, err
}

// allocation opens allocSamples connections to the primary address from
// the ports after local's and returns their mappings in order. Their SYNs
// leave one at a time: each dial starts when the one before has connected
// or has been on its way for allocStagger, so a NAT sees them in order and
// close together (on a busy NAT, other hosts' connections rarely fall
// between them); their Binding transactions overlap.
func (c *checker) allocation(ctx context.Context, local netip.AddrPort) []portSample {
	type indexed struct {
		i int
		s portSample
	}
	type dialed struct {
		conn net.Conn
		err  error
	}
	got := make(chan indexed, allocSamples)
	var wg sync.WaitGroup
	sample := func(i int, res <-chan dialed) {
		d := <-res
		if d.err != nil {
			c.note(fmt.Sprintf("allocation test: %v", d.err))
			return
		}
		r, err := c.binding(ctx, "alloc", d.conn, false, queryTimeout)
		if err == nil {
			got <- indexed{i, portSample{local: addrPortOf(d.conn.LocalAddr()), mapped: r.Mapped}}
		}
	}
	port, n := local.Port(), 0
	for try := 0; try < allocAttempts && n < allocSamples && ctx.Err() == nil; try++ {
		if port++; port == 0 {
			port = 1024 // wrap past the privileged ports
		}
		res := make(chan dialed, 1)
		go func(port uint16) {
			conn, err := c.dialFrom(ctx, port, c.server)
			res <- dialed{conn, err}
		}(port)
		t := time.NewTimer(allocStagger)
		select {
		case d := <-res:
			t.Stop()
			if busy(d.err) {
				continue // in use here, or its 4-tuple still in TIME_WAIT
			}
			if d.err != nil {
				c.note(fmt.Sprintf("allocation test stopped: %v", d.err))
				try = allocAttempts
				continue
			}
			res <- d // for sample
		case <-t.C: // on its way: the next one may leave
		}
		i := n
		n++
		wg.Go(func() { sample(i, res) })
	}
	wg.Wait()
	close(got)
	var all []indexed
	for x := range got {
		all = append(all, x)
	}
	sort.Slice(all, func(a, b int) bool { return all[a].i < all[b].i })
	if len(all) < n {
		return nil // a gap would fake a step: no pattern from a broken series
	}
	out := make([]portSample, len(all))
	for i, x := range all {
		out[i] = x.s
	}
	return out
}

// dialFrom connects from our IP and port to to, bounded by dialTimeout,
// and keeps the connection until the check ends: closing it early would
// leave its 4-tuple in TIME_WAIT and the NAT's mapping in doubt.
func (c *checker) dialFrom(ctx context.Context, port uint16, to netip.AddrPort) (net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := c.dial(dctx, netip.AddrPortFrom(c.bindIP, port), to)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.conns = append(c.conns, conn)
	c.mu.Unlock()
	return conn, nil
}

// binding runs one Binding transaction on conn and records it.
func (c *checker) binding(ctx context.Context, test string, conn net.Conn, probe bool, timeout time.Duration) (stuntcp.Response, error) {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := stuntcp.Query(qctx, conn, stuntcp.Request{SYNProbe: probe})
	o := Observation{Test: test, Local: addrPortOf(conn.LocalAddr()), Server: addrPortOf(conn.RemoteAddr()), Mapped: r.Mapped}
	if err != nil {
		o.Err = err.Error()
	}
	c.observe(o)
	return r, err
}

func (c *checker) observe(o Observation) {
	c.log.Debugf("test %s %s -> %s: mapped %s %s", o.Test, o.Local, o.Server, o.Mapped, o.Err)
	c.mu.Lock()
	c.obs = append(c.obs, o)
	c.mu.Unlock()
}

func (c *checker) note(s string) {
	if s == "" {
		return
	}
	c.mu.Lock()
	c.notes = append(c.notes, s)
	c.mu.Unlock()
}

// closeAll closes every connection with RST (SO_LINGER 0): a FIN would
// leave each 4-tuple in TIME_WAIT for a minute, and a check run again from
// the same port, or the agent's own STUN connection from it, would fail.
func (c *checker) closeAll() {
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, conn := range conns {
		closeNow(conn)
	}
}

// busy: the local port (or its 4-tuple toward the server) is taken.
func busy(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

func closeNow(conn net.Conn) {
	if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// acceptAll accepts until l closes, reporting each peer on accepted (when
// there is room) and closing the connection at once (the prober resets it
// anyway).
func acceptAll(l net.Listener, accepted chan<- netip.AddrPort, done chan<- struct{}) {
	defer close(done)
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		select {
		case accepted <- addrPortOf(conn.RemoteAddr()):
		default:
		}
		conn.Close()
	}
}

// waitAccepted reports whether our listener accepted a connection within
// acceptWait: the server's report comes after its handshake completed, so
// the connection is at least in our accept queue.
func waitAccepted(ctx context.Context, accepted <-chan netip.AddrPort) bool {
	t := time.NewTimer(acceptWait)
	defer t.Stop()
	select {
	case <-accepted:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
