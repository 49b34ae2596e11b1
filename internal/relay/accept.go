package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/icetcp/icetcp/internal/limits"
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

	var retry limits.AcceptRetry
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if limits.Transient(err) {
				// EMFILE and friends: wait for descriptors; Close ends the
				// wait.
				s.log.Warnf("accept on %s: %v; retrying", ap, err)
				if !retry.Wait(s.ctx.Done()) {
					return ErrServerClosed
				}
				continue
			}
			return fmt.Errorf("relay: accept on %s: %w", ap, err)
		}
		retry.Reset()
		s.admit(c, tc)
	}
}

// admit applies the connection caps (per source, IPv4 address or IPv6 /64,
// and in all) and hands the connection to pion's accept loop at once: the
// first message is read on pion's goroutine for the connection
// (clientConn.first), so the accept loop never waits on a client and a
// TURN connection costs no goroutine of its own.
func (s *Server) admit(raw net.Conn, tc *tls.Config) {
	remote := addrPortOf(raw.RemoteAddr())
	if s.isClosed() {
		raw.Close()
		return
	}
	if err := s.admitted.Take(remote.Addr()); err != nil {
		if errors.Is(err, limits.ErrPerSource) {
			s.stats.perSource.Add(1)
			s.refusals.Note(limits.ReasonPerSource, fmt.Sprintf("%v: %v", remote, err))
		} else {
			s.stats.maxConns.Add(1)
			s.refusals.Note(limits.ReasonTotal, fmt.Sprintf("%v: %v", remote, err))
		}
		reset(raw)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.admitted.Give(remote.Addr())
		raw.Close()
		return
	}
	c := newClientConn(s, raw, remote, tc)
	s.conns[c] = struct{}{}
	s.byRemote[remote] = c
	s.mu.Unlock()
	if err := raw.SetDeadline(time.Now().Add(s.cfg.FirstMessageTimeout)); err != nil {
		c.shut()
		return
	}
	s.toPion(c)
}

// forget undoes admit when c closes.
func (s *Server) forget(c *clientConn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.byRemote[c.remote] == c {
		delete(s.byRemote, c.remote)
	}
	s.mu.Unlock()
	s.admitted.Give(c.remote.Addr())
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
	c.atPion.Store(true)
	s.mu.Unlock()
	if !s.turnLn.deliver(c) {
		c.atPion.Store(false)
		s.pionWG.Done()
		c.shut()
	}
}

// toSTUN hands c, whose first message is a Binding request, to the STUN
// server; false when it is closed.
func (s *Server) toSTUN(c *clientConn) bool {
	return s.stunLn.deliver(&stunView{c: c})
}

// refuseFirst counts why a connection's first message did not come and
// returns err. A connection that closes before its first byte (a port
// probe, a health check) is not counted.
func (s *Server) refuseFirst(c *clientConn, err error) error {
	switch {
	case s.isClosed(), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.stats.firstTimeout.Add(1)
		s.log.Debugf("%v: no STUN message within %v; closed", c.remote, s.cfg.FirstMessageTimeout)
	default:
		s.stats.badFirst.Add(1)
		s.log.Debugf("%v: first message: %v; closed", c.remote, err)
	}
	return err
}

// reset closes c with an RST when it is a TCP connection: a refused
// connection leaves no TIME_WAIT behind on the relay.
func reset(c net.Conn) { limits.Reset(c) }
