package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/internal/stuntcp"
)

func (s *Server) serve(l net.Listener, tc *tls.Config) error {
	ap := addrPortOf(l.Addr())
	if !ap.IsValid() {
		l.Close()
		return fmt.Errorf("relay: listener address %v is not a TCP address", l.Addr())
	}
	s.mu.Lock()
	err := s.addListener(l, ap)
	s.mu.Unlock()
	if err != nil {
		l.Close()
		return err
	}
	defer s.removeListener(l)

	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed) {
				// EMFILE and friends: wait for descriptors, as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warnf("accept on %s: %v; retrying in %v", ap, err, backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("relay: accept on %s: %w", ap, err)
		}
		backoff = 0
		s.admit(c, tc)
	}
}

// admit applies the per-source cap and starts the connection's first-message
// goroutine. The accept loop never waits on a client.
func (s *Server) admit(raw net.Conn, tc *tls.Config) {
	remote := addrPortOf(raw.RemoteAddr())
	src := remote.Addr()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		raw.Close()
		return
	}
	if s.perSource[src] >= s.cfg.MaxConnsPerSource {
		s.mu.Unlock()
		s.stats.perSource.Add(1)
		s.log.Debugf("%v: %d connections from this address; refused", remote, s.cfg.MaxConnsPerSource)
		reset(raw)
		return
	}
	s.perSource[src]++
	c := newClientConn(s, raw, remote)
	s.conns[c] = struct{}{}
	s.byRemote[remote] = c
	s.wg.Add(1)
	s.mu.Unlock()
	go s.firstMessage(c, tc)
}

// forget undoes admit when c closes.
func (s *Server) forget(c *clientConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.byRemote[c.remote] == c {
		delete(s.byRemote, c.remote)
	}
	if s.perSource[c.remote.Addr()]--; s.perSource[c.remote.Addr()] <= 0 {
		delete(s.perSource, c.remote.Addr())
	}
}

// firstMessage runs the TLS handshake, if any, reads the first STUN message
// and hands the connection to the STUN or the TURN server.
func (s *Server) firstMessage(c *clientConn, tc *tls.Config) {
	defer s.wg.Done()
	if err := c.raw.SetDeadline(time.Now().Add(s.cfg.FirstMessageTimeout)); err != nil {
		c.shut()
		return
	}
	stream := c.raw
	if tc != nil {
		t := tls.Server(c.raw, tc)
		if err := t.Handshake(); err != nil {
			s.refuseFirst(c, fmt.Errorf("TLS handshake: %w", err))
			return
		}
		stream = t
	}
	var m stun.Message
	if err := stuntcp.ReadMessage(stream, &m); err != nil {
		s.refuseFirst(c, err)
		return
	}
	if err := c.raw.SetDeadline(time.Time{}); err != nil {
		c.shut()
		return
	}
	c.start(stream, m.Raw)
	if m.Type == stun.BindingRequest {
		if !s.stunLn.deliver(&stunView{c: c}) {
			c.shut()
		}
		return
	}
	// Anything else (Allocate, ConnectionBind, Refresh, ...) is pion's; a
	// message it does not handle gets its error answer or closes the
	// connection there.
	s.toPion(c)
}

// toPion hands c to pion's TURN server.
func (s *Server) toPion(c *clientConn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.shut()
		return
	}
	s.pionWG.Add(1) // until pion closes c
	s.mu.Unlock()
	if !s.turnLn.deliver(c) {
		s.pionWG.Done()
		c.shut()
	}
}

// refuseFirst closes a connection whose first message did not come, and
// counts why. A connection that closes before its first byte (a port
// probe, a health check) is not counted.
func (s *Server) refuseFirst(c *clientConn, err error) {
	defer c.shut()
	switch {
	case s.isClosed(), errors.Is(err, io.EOF):
		return
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.stats.firstTimeout.Add(1)
		s.log.Debugf("%v: no STUN message within %v; closed", c.remote, s.cfg.FirstMessageTimeout)
	default:
		s.stats.badFirst.Add(1)
		s.log.Debugf("%v: first message: %v; closed", c.remote, err)
	}
}

// reset closes c with an RST when it is a TCP connection: a refused
// connection leaves no TIME_WAIT behind on the relay.
func reset(c net.Conn) {
	if t, ok := c.(*net.TCPConn); ok {
		t.SetLinger(0)
	}
	c.Close()
}
