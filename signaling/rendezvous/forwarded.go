package rendezvous

import (
	"net/http"

	"github.com/icetcp/icetcp/internal/trustproxy"
)

// clientAddr is the address the request came from: the TCP peer, or the
// client a trusted proxy names in Forwarded or X-Forwarded-For
// (Server.TrustedProxies; nobody else's headers are read).
func (s *Server) clientAddr(r *http.Request) string {
	return trustproxy.ClientAddr(r.RemoteAddr, r.Header, trustproxy.Set(s.TrustedProxies))
}
