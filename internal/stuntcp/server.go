package stuntcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"
)

// Server defaults, used for zero fields.
const (
	DefaultIdleTimeout = 5 * time.Minute
	DefaultMaxConns    = 10000
)

// maxRequestBody bounds what the server reads per message. A Binding request
// needs a few dozen bytes; refusing 64 KiB bodies keeps a connection's buffer
// small when thousands of clients hold connections open.
const maxRequestBody = 4096

// ErrServerClosed is returned by Serve after Close.
var ErrServerClosed = errors.New("stuntcp: server closed")

// Server answers STUN Binding requests over TCP with XOR-MAPPED-ADDRESS,
// RESPONSE-ORIGIN (RFC 5780), SOFTWARE "icetcp" and FINGERPRINT. Connections
// stay open (clients keep them to hold their NAT mapping) until the client
// closes, IdleTimeout passes without a request, or Close; malformed input
// closes that connection only and is logged. The zero value is ready to use.
type Server struct {
	IdleTimeout   time.Duration         // 0: DefaultIdleTimeout (5 minutes)
	MaxConns      int                   // 0: DefaultMaxConns (10000); further connections are closed at once
	LoggerFactory logging.LoggerFactory // nil: logging.NewDefaultLoggerFactory(); scope "icetcp-stun"

	initOnce sync.Once
	log      logging.LeveledLogger

	mu        sync.Mutex // guards following
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
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
	})
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
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[net.Conn]struct{})
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() && !errors.Is(err, net.ErrClosed) {
				// EMFILE and friends: wait for descriptors rather than spin
				// or give up, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warnf("accept on %s: %v; retrying in %v", l.Addr(), err, backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("stuntcp: accept on %s: %w", l.Addr(), err)
		}
		backoff = 0
		s.track(c)
	}
}

// track starts c's goroutine, or closes c when the server is closed or full.
func (s *Server) track(c net.Conn) {
	s.mu.Lock()
	max := s.MaxConns
	if max <= 0 {
		max = DefaultMaxConns
	}
	if s.closed || len(s.conns) >= max {
		full := !s.closed
		s.mu.Unlock()
		if full {
			s.log.Warnf("%d connections open; closing %s", max, c.RemoteAddr())
		}
		c.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serveConn(c)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close closes the listeners and all connections and waits for the
// connection goroutines to end. Serve calls return ErrServerClosed.
func (s *Server) Close() error {
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
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stuntcp: close: %w", err)
	}
	return nil
}

func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	remote, local := addrPortOf(c.RemoteAddr()), addrPortOf(c.LocalAddr())
	var req, res stun.Message
	for {
		// One deadline covers waiting for the request and writing the
		// answer: a client that neither asks nor reads is idle.
		if err := c.SetDeadline(time.Now().Add(idle)); err != nil {
			return
		}
		if err := readMessage(c, &req, maxRequestBody); err != nil {
			s.logReadError(c, err)
			return
		}
		answer, err := respond(&req, &res, remote, local)
		if err != nil {
			s.log.Warnf("%s: %v; closing", c.RemoteAddr(), err)
			return
		}
		if !answer {
			continue
		}
		if _, err := c.Write(res.Raw); err != nil {
			s.log.Debugf("%s: write: %v", c.RemoteAddr(), err)
			return
		}
	}
}

// logReadError warns about bad input and notes ordinary ends (EOF, reset,
// idle timeout, Close) at debug level only.
func (s *Server) logReadError(c net.Conn, err error) {
	if errors.Is(err, ErrNotSTUN) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrMalformed) {
		s.log.Warnf("%s: %v; closing", c.RemoteAddr(), err)
		return
	}
	s.log.Debugf("%s: %v; closing", c.RemoteAddr(), err)
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
