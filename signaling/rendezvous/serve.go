package rendezvous

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"

	"github.com/icetcp/icetcp/internal/limits"
	"github.com/icetcp/icetcp/internal/trustproxy"
)

// Serve runs the rendezvous on l, a plain TCP listener, until Close (then
// it returns http.ErrServerClosed); with tc it serves wss://. It is how
// the rendezvous should meet the open internet, and what icetcp serve
// runs:
//
//   - connections are counted at accept, before a byte is read: at most
//     MaxConnsPerSource from one source (IPv4 address or IPv6 /64) and
//     MaxConns in all; one over a limit is reset at once. ServeHTTP's own
//     limits count WebSocket members; these count every TCP connection,
//     including those that never send an upgrade request.
//   - the TLS handshake and the request must arrive within JoinTimeout,
//     an answer must be written within 10 s, and an idle keep-alive
//     connection is closed after JoinTimeout (a request that is not a
//     WebSocket upgrade is answered 426 and its connection closed at
//     once).
//
// A Server may Serve several listeners.
func (s *Server) Serve(l net.Listener, tc *tls.Config) error {
	s.init()
	ll := limits.NewListener(l, limits.NewCounter(s.maxConns, s.maxConnsPerSource), s.refused.log)
	if len(s.TrustedProxies) > 0 {
		// A trusted proxy carries many clients: ServeHTTP counts them by
		// the address it names.
		ll.Shared = trustproxy.Set(s.TrustedProxies).Contains
	}
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.joinTimeout,
		ReadTimeout:       s.joinTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       s.joinTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		TLSConfig:         tc,
		// A TLS handshake that fails, a client that goes away: the
		// refusals that matter are counted and logged by the limits.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	s.https = append(s.https, hs)
	s.listeners = append(s.listeners, ll)
	s.mu.Unlock()
	var err error
	if tc != nil {
		err = hs.Serve(tls.NewListener(ll, tc))
	} else {
		err = hs.Serve(ll)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return fmt.Errorf("rendezvous: serve on %s: %w", l.Addr(), err)
}

// maxHeaderBytes bounds an upgrade request's header: a WebSocket upgrade
// with a bearer token is well under a kilobyte.
const maxHeaderBytes = 16 << 10

// isUpgrade reports a WebSocket upgrade request (RFC 6455 §4.1: Upgrade
// names websocket, Connection names upgrade).
func isUpgrade(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// Drain stops taking connections, for a graceful shutdown: the listeners
// given to Serve are closed (Serve returns http.ErrServerClosed) and new
// upgrade requests on open connections are refused with "unavailable",
// while members that joined keep their rooms and their messages flow, so
// that signaling under way can finish (in a cluster, a member's peer may
// still arrive through another node). Stats tells when the rooms are
// empty; Close ends the rest.
func (s *Server) Drain() error {
	s.init()
	s.mu.Lock()
	s.draining = true
	https := s.https
	s.mu.Unlock()
	var errs []error
	for _, hs := range https {
		// Closes the listener and every connection not yet upgraded; a
		// WebSocket is hijacked, and http.Server no longer tracks it.
		errs = append(errs, hs.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rendezvous: drain: %w", err)
	}
	return nil
}
