package natlab

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
)

// ProxyOnly is the profile of a peer whose network has no way out but an
// explicit proxy, as in many corporate networks: its gateway forwards
// nothing (silently), and runs the proxies the matrix asks for
// (MatrixConfig.Proxies) on its LAN address. A proxy-only peer gets
// connect --proxy, the rendezvous as wss:// on the server's port-443
// alias and TURN as turns: on port 443, because the proxies tunnel to
// port 443 only (squid's default for CONNECT); the other peer gets the
// same rendezvous as wss:// on 8080 and TURN over TCP, as usual.
const ProxyOnly = "proxy-only"

// proxyProfiles are the profiles beside the NAT catalogue (Profiles): a
// peer behind one needs more than a NAT to get out, so NAT probes and the
// full matrix leave them out; ProfileByName and the matrix know them.
var proxyProfiles = []Profile{{
	Name:        ProxyOnly,
	Description: "no route out: the gateway forwards nothing; its squid (HTTP CONNECT) or dante (SOCKS5), tunnelling to port 443 only, is the way out",
	NAT:         true,
	Rules: `table ip {{.Table}} {
	chain forward {
		type filter hook forward priority filter; policy drop;
	}
}
`,
}}

// ProxyProfiles returns the profiles that need a proxy (ProxyOnly).
func ProxyProfiles() []Profile {
	return append([]Profile(nil), proxyProfiles...)
}

func isProxyOnly(profile string) bool { return profile == ProxyOnly }

// ProxyKind is a proxy on a proxy-only peer's gateway.
type ProxyKind string

const (
	// ProxySquid is squid asked with HTTP CONNECT, no credentials.
	ProxySquid ProxyKind = "squid"
	// ProxySquidAuth is squid asking for Basic credentials (407 without
	// them); connect gets them in --proxy's URL.
	ProxySquidAuth ProxyKind = "squid-auth"
	// ProxyDante is dante-server (danted) speaking SOCKS5, no
	// credentials.
	ProxyDante ProxyKind = "dante"
	// ProxyDanteAuth is danted asking for RFC 1929 username/password.
	ProxyDanteAuth ProxyKind = "dante-auth"
)

// ProxyKinds are every kind, in a stable order.
var ProxyKinds = []ProxyKind{ProxySquid, ProxySquidAuth, ProxyDante, ProxyDanteAuth}

// ParseProxyKinds reads a comma-separated list of proxy kinds.
func ParseProxyKinds(s string) ([]ProxyKind, error) {
	var out []ProxyKind
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k := ProxyKind(f)
		switch k {
		case ProxySquid, ProxySquidAuth, ProxyDante, ProxyDanteAuth:
			out = append(out, k)
		default:
			return nil, fmt.Errorf("natlab: unknown proxy %q (have squid, squid-auth, dante, dante-auth)", f)
		}
	}
	return out, nil
}

// Ports the proxies listen on, at a proxy-only gateway's LAN address.
const (
	squidPort     = 3128
	squidAuthPort = 3129
	dantePort     = 1080
	danteAuthPort = 1081
	// ProxyUser is the user of squid-auth and dante-auth; the password is
	// made up per cell.
	ProxyUser = "lab"
)

// ProxyAddr is where kind listens for the proxy-only peer h: its
// gateway's LAN address (10.0.n.1).
func ProxyAddr(h Host, kind ProxyKind) netip.AddrPort {
	lan := h.Addr.As4()
	lan[3] = 1
	port := uint16(squidPort)
	switch kind {
	case ProxySquidAuth:
		port = squidAuthPort
	case ProxyDante:
		port = dantePort
	case ProxyDanteAuth:
		port = danteAuthPort
	}
	return netip.AddrPortFrom(netip.AddrFrom4(lan), port)
}

// ProxyURL is connect's --proxy for kind behind h, with pass for
// squid-auth and dante-auth.
func ProxyURL(h Host, kind ProxyKind, pass string) string {
	ap := ProxyAddr(h, kind).String()
	switch kind {
	case ProxySquidAuth:
		return "http://" + ProxyUser + ":" + pass + "@" + ap
	case ProxyDante:
		return "socks5://" + ap
	case ProxyDanteAuth:
		return "socks5://" + ProxyUser + ":" + pass + "@" + ap
	}
	return "http://" + ap
}

// proxyCell is what a cell with a proxy-only peer adds to its servers:
// TLS for the rendezvous and TURN (the proxies tunnel to 443 only, and
// turns: there is the case that matters), and the proxies on the
// proxy-only gateways. Trials take the kinds in turn.
type proxyCell struct {
	dir      string // certificate files
	ca       string // the CA connect trusts (--ca)
	cert     string
	key      string
	kinds    []ProxyKind
	pass     string // the password of squid-auth and dante-auth
	stops    []func()
	logs     []func() string
	mu       sync.Mutex // guards following
	trial    int        // trials started (connectArgs of the first proxy-only host)
	firstFor string     // the host whose connectArgs starts a trial
}

// serveArgs are serve's extra flags: wss:// rendezvous, turns: on 443.
func (p *proxyCell) serveArgs() []string {
	if p == nil {
		return nil
	}
	return []string{"--tls-cert", p.cert, "--tls-key", p.key, "--turns-addr", netip.AddrPortFrom(ServerAddr, 443).String()}
}

// connectArgs are the server-side flags of connect behind h in a proxy
// cell, and the kind of proxy the trial uses ("" for a peer without one).
func (p *proxyCell) connectArgs(s *servers, h Host) (args, env []string, kind ProxyKind) {
	stun := netip.AddrPortFrom(ServerAddr, stunPort)
	args = []string{"--ca", p.ca, "--stun", stun.String()}
	if !isProxyOnly(h.Profile) {
		args = append(args, "--signal", "wss://"+netip.AddrPortFrom(ServerAddr, signalPort).String())
		if s.relay != RelayOff {
			args = append(args, "--turn", "turn:"+stun.String()+"?transport=tcp", "--turn-user", turnUser)
			env = append(env, "ICETCP_TURN_PASS="+s.turnPass)
		}
		return args, env, ""
	}
	p.mu.Lock()
	if p.firstFor == "" || p.firstFor == h.Name {
		p.firstFor = h.Name
		p.trial++
	}
	kind = p.kinds[(p.trial-1)%len(p.kinds)]
	p.mu.Unlock()
	args = append(args, "--signal", "wss://"+netip.AddrPortFrom(Signal443, 443).String(), "--proxy", ProxyURL(h, kind, p.pass))
	if s.relay != RelayOff {
		args = append(args, "--turn", "turns:"+netip.AddrPortFrom(ServerAddr, 443).String(), "--turn-user", turnUser)
		env = append(env, "ICETCP_TURN_PASS="+s.turnPass)
	}
	return args, env, kind
}

func (p *proxyCell) stop() {
	if p == nil {
		return
	}
	for _, s := range p.stops {
		s()
	}
	os.RemoveAll(p.dir)
}

func (p *proxyCell) log() string {
	if p == nil {
		return ""
	}
	var b strings.Builder
	for _, l := range p.logs {
		b.WriteString(l())
	}
	return b.String()
}
