package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpproxy"
)

// Direct is the setting that reaches every target without a proxy,
// whatever the environment says.
const Direct = "direct"

// Func returns the proxy through which to reach target (host:port), or nil
// to reach it directly.
type Func func(target string) (*url.URL, error)

// Setting returns the Func for a user's proxy setting:
//
//   - "" reads the environment, as Go's HTTP client does for an https
//     request, with ALL_PROXY as a fallback: HTTPS_PROXY (or https_proxy),
//     else ALL_PROXY (or all_proxy); NO_PROXY (or no_proxy) lists hosts,
//     domains and CIDR ranges reached directly, and localhost and loopback
//     addresses are never proxied (golang.org/x/net/http/httpproxy).
//   - Direct ("direct") never uses a proxy.
//   - a URL (see Parse) is used for every target, NO_PROXY or not.
//
// The environment is read once, here; a malformed value is an error that
// names the variable.
func Setting(s string) (Func, error) {
	switch s {
	case "":
		return fromEnvironment()
	case Direct:
		return direct, nil
	}
	u, err := Parse(s)
	if err != nil {
		return nil, err
	}
	return func(string) (*url.URL, error) { return u, nil }, nil
}

func direct(string) (*url.URL, error) { return nil, nil }

func fromEnvironment() (Func, error) {
	name, val := getenvAny("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
	if val == "" {
		return direct, nil
	}
	u, err := Parse(val)
	if err != nil {
		return nil, fmt.Errorf("proxy: $%s: %w", name, err)
	}
	_, noProxy := getenvAny("NO_PROXY", "no_proxy")
	pick := (&httpproxy.Config{HTTPSProxy: u.String(), NoProxy: noProxy}).ProxyFunc()
	return func(target string) (*url.URL, error) {
		p, err := pick(&url.URL{Scheme: "https", Host: target})
		if err != nil || p == nil {
			return nil, err
		}
		return u, nil
	}, nil
}

func getenvAny(names ...string) (name, val string) {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return n, v
		}
	}
	return "", ""
}

// Default proxy ports, as Go's HTTP client has them.
const (
	defaultHTTPPort   = "80"
	defaultSOCKS5Port = "1080"
)

var errScheme = errors.New("want http://[USER:PASS@]HOST[:PORT] (HTTP CONNECT) or socks5://[USER:PASS@]HOST[:PORT] (SOCKS5)")

// Parse reads a proxy URL: http://[USER:PASS@]HOST[:PORT] for an HTTP
// proxy asked with CONNECT (port 80 when omitted; a URL without a scheme
// is taken as http://, as curl and Go do), socks5://[USER:PASS@]HOST[:PORT]
// or socks5h:// for SOCKS5 (port 1080; with both the proxy resolves the
// target's name). USER and PASS are percent-encoded. https:// proxies (TLS
// to the proxy itself) are not supported; what runs in the tunnel is TLS
// anyway for turns: and wss:.
func Parse(s string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("proxy: %q: %w", redactRaw(raw), errScheme)
	}
	shown := u.Redacted()
	var port string
	switch u.Scheme = strings.ToLower(u.Scheme); u.Scheme {
	case "http":
		port = defaultHTTPPort
	case "socks5", "socks5h":
		port = defaultSOCKS5Port
	case "https":
		return nil, fmt.Errorf("proxy: %s: https:// proxies (TLS to the proxy) are not supported: use http:// (turns: and wss: stay encrypted inside the tunnel)", shown)
	default:
		return nil, fmt.Errorf("proxy: %s: scheme %q: %w", shown, u.Scheme, errScheme)
	}
	if u.Hostname() == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("proxy: %s: %w", shown, errScheme)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("proxy: %s: port %q is not in 1-65535", shown, p)
		}
		port = p
	}
	if u.Scheme != "http" && u.User != nil {
		if len(u.User.Username()) > 255 || len(password(u)) > 255 {
			return nil, fmt.Errorf("proxy: %s: SOCKS5 user names and passwords are at most 255 bytes (RFC 1929)", shown)
		}
	}
	return &url.URL{Scheme: u.Scheme, User: u.User, Host: net.JoinHostPort(u.Hostname(), port)}, nil
}

func password(u *url.URL) string {
	p, _ := u.User.Password()
	return p
}

// redactRaw hides what may be a password in a string url.Parse rejected.
func redactRaw(s string) string {
	if at := strings.LastIndex(s, "@"); at >= 0 {
		return "xxxxx@" + s[at+1:]
	}
	return s
}
