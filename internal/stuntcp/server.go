package stuntcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"

	"github.com/icetcp/icetcp/internal/limits"
)

// Server defaults, used for zero fields.
const (
	DefaultIdleTimeout         = 5 * time.Minute
	DefaultFirstMessageTimeout = 5 * time.Second
	DefaultMaxConns            = 10000
	DefaultMaxConnsPerIP       = 32
)

// MaxRequestBody bounds what the server reads per message. A Binding
// request needs a few dozen bytes; refusing 64 KiB bodies keeps a
// connection's buffer small when thousands of clients hold connections
// open.
const MaxRequestBody = 4096

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("stuntcp: server closed")

// Server answers STUN Binding requests over TCP with XOR-MAPPED-ADDRESS,
// RESPONSE-ORIGIN and, with an alternate address, OTHER-ADDRESS (RFC 5780),
// SOFTWARE "icetcp" and FINGERPRINT. Connections stay open (clients keep
// them to hold their NAT mapping) until the client closes, IdleTimeout
// passes without a request, or Close; malformed input closes that
// connection only. The zero value is ready to use.
//
// Limits against connection floods (a source that opens thousands of idle
// connections must not starve the others): a new connection must deliver
// its first request within FirstMessageTimeout; at most MaxConnsPerIP
// connections per source (IPv4 address or IPv6 /64) and MaxConns in all are
// open, further ones are closed at accept with RST. Every refusal is counted
// by reason (Stats) and logged at a bounded pace: the first of each reason
// at once, then one line per reason per 10 s with the count.
type Server struct {
	IdleTimeout         time.Duration // 0: DefaultIdleTimeout (5 minutes) between requests
	FirstMessageTimeout time.Duration // 0: DefaultFirstMessageTimeout (5 s) from accept to a complete first request
	MaxConns            int           // 0: DefaultMaxConns (10000) open connections in all
	MaxConnsPerIP       int           // 0: DefaultMaxConnsPerIP (32) open connections per source IPv4 address or IPv6 /64

	// Primary and Alternate turn on RFC 5780 when both are set: they are
	// the server's IP1:P1 and IP2:P2 (see ListenRFC5780, which opens the
	// four listeners), responses carry OTHER-ADDRESS, and SYN probes
	// (AttrSYNProbe) are run from the IP the client did not reach. Zero:
	// no OTHER-ADDRESS, probes declined (DeclineNoAlternate).
	Primary, Alternate netip.AddrPort
	ProbeTimeout       time.Duration // 0: DefaultProbeTimeout (1 s) for a probe's connect
	ProbeConcurrency   int           // 0: DefaultProbeConcurrency (16) probes in flight; more are declined
	ProbeBurst         int           // 0: DefaultProbeBurst (4) probes a source may run at once...
	ProbeInterval      time.Duration // 0: DefaultProbeInterval (5 s): ...then one per interval

	LoggerFactory logging.LoggerFactory // nil: logging.NewDefaultLoggerFactory(); scope "icetcp-stun"

	initOnce   sync.Once
	log        logging.LeveledLogger
	refusals   *limits.RefusalLog
	probeRate  *rateLimiter
	probeSlots chan struct{} // a semaphore: one token per probe in flight
	ctx        context.Context
	cancel     context.CancelFunc // ends probes in flight at Close
	stats      counters

	mu        sync.Mutex // guards following
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	perSource map[netip.Prefix]int // open connections by limits.SourceKey
	closed    bool
	wg        sync.WaitGroup // connection goroutines; Add under mu while !closed
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		lf := s.LoggerFactory
		if lf == nil {
			lf = logging.NewDefaultLoggerFactory()
		}
		s.log = lf.NewLogger("icetcp-stun")
		s.refusals = limits.NewRefusalLog(s.log.Warnf, limits.DefaultLogWindow)
		s.probeRate = newRateLimiter(s.probeInterval(), s.probeBurst(), maxProbeSources)
		s.probeSlots = make(chan struct{}, orDefault(s.ProbeConcurrency, DefaultProbeConcurrency))
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[net.Conn]struct{})
		s.perSource = make(map[netip.Prefix]int)
	})
}

// ListenAddrs returns the addresses of the listeners Serve is serving now
// (a TURN relay sharing the server must never connect to them).
func (s *Server) ListenAddrs() []netip.AddrPort {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]netip.AddrPort, 0, len(s.listeners))
	for l := range s.listeners {
		if ap := addrPortOf(l.Addr()); ap.IsValid() {
			addrs = append(addrs, ap)
		}
	}
	return addrs
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.init()
	s.mu.Lock()
	open := len(s.conns)
	s.mu.Unlock()
	return s.stats.snapshot(open)
}

// Serve accepts connections on l and answers each on its own goroutine. It
// returns when l is closed: ErrServerClosed after Close, otherwise the
// wrapped Accept error. Serve may be called for several listeners.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var retry limits.AcceptRetry
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if limits.Transient(err) {
				// EMFILE and friends: wait for descriptors rather than spin
				// or give up; Close ends the wait.
				s.log.Warnf("accept on %s: %v; retrying", l.Addr(), err)
				if !retry.Wait(s.ctx.Done()) {
					return ErrServerClosed
				}
				continue
			}
			return fmt.Errorf("stuntcp: accept on %s: %w", l.Addr(), err)
		}
		retry.Reset()
		s.track(c)
	}
}

// track starts c's goroutine, or closes c when the server is closed or a
// connection limit is reached.
func (s *Server) track(c net.Conn) {
	remote := addrPortOf(c.RemoteAddr())
	key := limits.SourceKey(remote.Addr())
	maxAll := orDefault(s.MaxConns, DefaultMaxConns)
	maxSource := orDefault(s.MaxConnsPerIP, DefaultMaxConnsPerIP)
	s.mu.Lock()
	var reason, detail string
	switch {
	case s.closed:
	case s.perSource[key] >= maxSource:
		reason, detail = reasonPerIP, fmt.Sprintf("%s: %d connections open from %s", remote, maxSource, key)
	case len(s.conns) >= maxAll:
		reason, detail = reasonMaxConns, fmt.Sprintf("%s: %d connections open", remote, maxAll)
	default:
		s.conns[c] = struct{}{}
		s.perSource[key]++
		s.wg.Add(1)
		s.mu.Unlock()
		s.stats.accepted.Add(1)
		go s.serveConn(c, key)
		return
	}
	s.mu.Unlock()
	switch reason {
	case reasonMaxConns:
		s.stats.refusedMaxConns.Add(1)
	case reasonPerIP:
		s.stats.refusedPerIP.Add(1)
	}
	if reason != "" {
		s.refusals.Note(reason, detail)
	}
	// RST rather than FIN: a flood must not leave the server thousands of
	// TIME_WAIT entries.
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close closes the listeners and all connections and waits for the
// connection goroutines to end. Serve calls return ErrServerClosed.
func (s *Server) Close() error {
	s.init()
	s.cancel()
	s.mu.Lock()
	s.closed = true
	var closers []interface{ Close() error }
	for l := range s.listeners {
		closers = append(closers, l)
	}
	for c := range s.conns {
		closers = append(closers, c)
	}
	s.mu.Unlock()
	// Close outside the lock: serveConn takes it to unregister.
	var errs []error
	for _, c := range closers {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	s.refusals.Close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stuntcp: close: %w", err)
	}
	return nil
}

func (s *Server) serveConn(c net.Conn, key netip.Prefix) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		if s.perSource[key]--; s.perSource[key] <= 0 {
			delete(s.perSource, key)
		}
		s.mu.Unlock()
		c.Close()
	}()
	idle := orDefault(s.IdleTimeout, DefaultIdleTimeout)
	first := orDefault(s.FirstMessageTimeout, DefaultFirstMessageTimeout)
	remote, local := addrPortOf(c.RemoteAddr()), addrPortOf(c.LocalAddr())
	other, _ := otherAddress(s.Primary, s.Alternate, local)
	var req, res stun.Message
	probed := false
	// The first request must be complete within first of the accept; the
	// ones after it within idle of the previous answer.
	deadline := time.Now().Add(first)
	for n := 0; ; n++ {
		if err := c.SetDeadline(deadline); err != nil {
			return
		}
		if err := readMessage(c, &req, MaxRequestBody); err != nil {
			s.readFailed(c, n, err)
			return
		}
		r := reply{remote: remote, local: local, other: other}
		if wantsProbe(&req) {
			p := s.synProbe(remote, local, &probed)
			r.probe = &p
		}
		answer, err := respond(&req, &res, r)
		if err != nil {
			s.badInput(c, reasonFingerprint, err)
			return
		}
		deadline = time.Now().Add(idle)
		if !answer {
			continue
		}
		// A response is small: a client that does not take it within the
		// first-message timeout is not reading.
		if err := c.SetWriteDeadline(time.Now().Add(first)); err != nil {
			return
		}
		if _, err := c.Write(res.Raw); err != nil {
			s.log.Debugf("%s: write: %v", c.RemoteAddr(), err)
			return
		}
		s.stats.answered.Add(1)
	}
}

// readFailed counts and logs why reading request number n (from 0) ended:
// bad input and a first request that never came are refusals; EOF, reset,
// the idle timeout and Close are ordinary ends, logged at debug level.
func (s *Server) readFailed(c net.Conn, n int, err error) {
	switch {
	case errors.Is(err, ErrNotSTUN):
		s.badInput(c, reasonNotSTUN, err)
	case errors.Is(err, ErrTooLarge):
		s.badInput(c, reasonTooLarge, err)
	case errors.Is(err, ErrMalformed):
		s.badInput(c, reasonMalformed, err)
	case errors.Is(err, os.ErrDeadlineExceeded) && n == 0 && !s.isClosed():
		s.stats.firstMessageTimeouts.Add(1)
		s.refusals.Note(reasonFirstMessage, fmt.Sprintf("%s: no complete request within %v", c.RemoteAddr(),
			orDefault(s.FirstMessageTimeout, DefaultFirstMessageTimeout)))
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.stats.idleTimeouts.Add(1)
		s.log.Debugf("%s: idle; closing", c.RemoteAddr())
	default:
		s.log.Debugf("%s: %v; closing", c.RemoteAddr(), err)
	}
}

// badInput counts and logs input that closes a connection.
func (s *Server) badInput(c net.Conn, reason string, err error) {
	s.stats.badInput.Add(1)
	s.refusals.Note(reason, fmt.Sprintf("%s: %v; closing", c.RemoteAddr(), err))
}

// addrPortOf converts a net.Addr from a TCP conn; other kinds give the zero
// value, and the server then leaves the address attributes out.
func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
