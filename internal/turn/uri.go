package turn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Default server ports (RFC 8656, RFC 7065): 3478 for TURN over TCP, 5349
// for TURN over TLS.
const (
	DefaultPort    = 3478
	DefaultTLSPort = 5349
)

// URI is a TURN server reached over TCP, or over TLS when TLS is set.
type URI struct {
	Host string // a DNS name or an IP literal without brackets
	Port uint16
	TLS  bool
}

// ParseURI parses RFC 7065 TURN URIs: "turn:host[:port][?transport=tcp]"
// (default port 3478) and "turns:host[:port][?transport=tcp]" (TLS, default
// port 5349). A bare "host:port" means turn:host:port. transport=udp is
// rejected: this library relays TCP only (RFC 6062), and it always reaches
// the server over TCP or TLS. IPv6 hosts go in brackets.
//
// It does not use pion/stun's ParseURI, which recurses until the stack
// overflows on inputs such as "turn:[::1]4" (found by FuzzParseURI).
func ParseURI(s string) (URI, error) {
	scheme, rest, _ := strings.Cut(s, ":")
	var u URI
	switch strings.ToLower(scheme) {
	case "turn":
	case "turns":
		u.TLS = true
	case "stun", "stuns":
		return URI{}, uriError(s, "a STUN URI names no TURN server")
	default:
		if strings.HasPrefix(rest, "//") {
			return URI{}, uriError(s, fmt.Sprintf("scheme %q: %s", scheme, uriForms))
		}
		return parseHostPort(s)
	}
	if strings.HasPrefix(rest, "//") {
		return URI{}, uriError(s, "TURN URIs have no \"//\" (RFC 7065: turn:host:port)")
	}
	hostport, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		if err := checkQuery(query); err != nil {
			return URI{}, fmt.Errorf("turn: URI %q: %w", s, err)
		}
	}
	host, port, err := splitHostPort(hostport)
	if err == nil {
		u.Host = host
		u.Port = u.port()
		if port != "" {
			u.Port, err = checkPort(port)
		}
	}
	if err == nil {
		err = checkHost(u.Host)
	}
	if err != nil {
		return URI{}, fmt.Errorf("turn: URI %q: %w", s, err)
	}
	return u, nil
}

// checkQuery accepts RFC 7065's only parameter, transport, with tcp.
func checkQuery(query string) error {
	q, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	for k, v := range q {
		switch {
		case k != "transport":
			return fmt.Errorf("query: unknown parameter %q (RFC 7065 has only transport)", k)
		case len(v) != 1:
			return errors.New("query: transport given more than once")
		case strings.EqualFold(v[0], "udp"):
			return errors.New("transport=udp is not supported: this client relays TCP only (RFC 6062)")
		case !strings.EqualFold(v[0], "tcp"):
			return fmt.Errorf("query: unsupported transport %q", v[0])
		}
	}
	return nil
}

// splitHostPort splits host[:port] where the port may be absent and an
// IPv6 host is in brackets.
func splitHostPort(hp string) (host, port string, err error) {
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", "", fmt.Errorf("%w: missing ']' in %q", errBadHost, hp)
		}
		host, after := hp[1:end], hp[end+1:]
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", "", fmt.Errorf("%w: [%s] is not an IPv6 address", errBadHost, host)
		}
		if after == "" {
			return host, "", nil
		}
		if p, ok := strings.CutPrefix(after, ":"); ok {
			return host, p, nil
		}
		return "", "", fmt.Errorf("%w: %q after ']'", errBadHost, after)
	}
	switch strings.Count(hp, ":") {
	case 0:
		return hp, "", nil
	case 1:
		host, port, _ = strings.Cut(hp, ":")
		return host, port, nil
	default:
		return "", "", fmt.Errorf("%w: %q (an IPv6 address goes in brackets)", errBadHost, hp)
	}
}

// uriForms is what ParseURI accepts, for error messages.
const uriForms = "want turn:host[:port][?transport=tcp], turns:host[:port] or host:port"

func parseHostPort(s string) (URI, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return URI{}, fmt.Errorf("turn: URI %q: %s: %w", s, uriForms, err)
	}
	u := URI{Host: host}
	if u.Port, err = checkPort(port); err == nil {
		err = checkHost(host)
	}
	if err != nil {
		return URI{}, fmt.Errorf("turn: URI %q: %s: %w", s, uriForms, err)
	}
	return u, nil
}

func uriError(s, why string) error { return fmt.Errorf("turn: URI %q: %s", s, why) }

func checkPort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil || p == 0 {
		return 0, fmt.Errorf("port %q is not in 1-65535", s)
	}
	return uint16(p), nil
}

var errBadHost = errors.New("host is neither an IP address nor a DNS name")

// checkHost accepts IP literals and DNS names (letters, digits, '-', '_',
// '.'), which keeps user info, paths and zone tricks out of the dial string.
func checkHost(h string) error {
	if h == "" {
		return fmt.Errorf("%w: empty", errBadHost)
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("%w: %q has a zone", errBadHost, h)
		}
		return nil
	}
	if len(h) > 253 {
		return fmt.Errorf("%w: %d characters", errBadHost, len(h))
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w: %q", errBadHost, h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%w: %q", errBadHost, h)
			}
		}
	}
	return nil
}

// String returns the URI in RFC 7065 form: "turn:host:port?transport=tcp"
// or "turns:host:port"; ParseURI(u.String()) == u.
func (u URI) String() string {
	if u.TLS {
		return "turns:" + u.hostPort()
	}
	return "turn:" + u.hostPort() + "?transport=tcp"
}

// hostPort is the dial address; a zero port means the scheme's default.
func (u URI) hostPort() string {
	return net.JoinHostPort(u.Host, strconv.Itoa(int(u.port())))
}

func (u URI) port() uint16 {
	switch {
	case u.Port != 0:
		return u.Port
	case u.TLS:
		return DefaultTLSPort
	default:
		return DefaultPort
	}
}
