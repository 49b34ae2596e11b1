package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/icetcp/icetcp/internal/proxy"
	"github.com/icetcp/icetcp/internal/turn"
)

// ProxyError is a tunnel the proxy (Config.Proxy) did not open, found with
// errors.As in a warning's error or Connect's: it names the proxy (without
// its password), the target and the proxy's answer (Status: 407 for
// missing or wrong credentials, 403 for a target it forbids, ...);
// Refused tells a proxy that declined (credentials, policy) from one that
// could not reach the server.
type ProxyError = proxy.Error

// turnAllocate allocates on s with internal/turn, whose TCP connections
// to the server go through the agent's Network like every other socket,
// and through the proxy Config.Proxy picks for the server.
func (a *Agent) turnAllocate(ctx context.Context, s TURNServer) (relayAlloc, error) {
	uri, err := turn.ParseURI(s.URI)
	if err != nil {
		return nil, err
	}
	dial := a.dialTURN
	u, err := a.cfg.proxyFor(uriTarget(uri))
	if err != nil {
		return nil, err
	}
	if u != nil {
		// The connection to the proxy is the agent's own; the tunnel
		// carries TLS (turns:) and STUN to the server.
		pd := &proxy.Dialer{URL: u, Forward: a.dialTURN}
		dial = pd.DialContext
	}
	al, err := turn.Allocate(ctx, turn.Config{
		Server: uri, Username: s.Username, Password: s.Password, Secret: s.Secret,
		TLSConfig: s.TLSConfig, Dial: dial, LoggerFactory: a.cfg.LoggerFactory,
	})
	if err != nil {
		return nil, err
	}
	return al, nil
}

// turnProxy is the proxy (its URL without the password) through which s
// is reached; "" when direct.
func (a *Agent) turnProxy(s TURNServer) string {
	uri, err := turn.ParseURI(s.URI)
	if err != nil {
		return ""
	}
	u, err := a.cfg.proxyFor(uriTarget(uri))
	if err != nil || u == nil {
		return ""
	}
	return u.Redacted()
}

func uriTarget(u turn.URI) string {
	return net.JoinHostPort(u.Host, strconv.Itoa(int(u.Port))) // ParseURI fills the default port
}

// dialTURN connects to a TURN server, or to the proxy in front of it, from
// an ephemeral port.
func (a *Agent) dialTURN(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("agent: TURN server %q: %w", addr, err)
	}
	var remote netip.AddrPort
	if ip, err := netip.ParseAddr(host); err == nil {
		ap, err := netip.ParseAddrPort(net.JoinHostPort(ip.String(), port))
		if err != nil {
			return nil, fmt.Errorf("agent: TURN server %q: %w", addr, err)
		}
		remote = ap
	} else {
		// A name: resolve it in the family of our first host address.
		if remote, err = a.resolve(ctx, addr, a.g.family); err != nil {
			return nil, err
		}
	}
	var local netip.AddrPort
	if remote.Addr().Is4() {
		local = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	} else {
		local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	return a.seams.net.Dial(ctx, local, remote)
}
