package trustproxy

import (
	"net/http"
	"net/netip"
	"strings"
)

// Limits on what is parsed of the headers: a proxy chain is a few hops.
const (
	maxHops        = 32
	maxHeaderBytes = 4096
)

// ClientAddr returns the client's address for a request that arrived from
// remote (the TCP peer, "IP:PORT"): remote itself unless its IP is in
// trusted; then the rightmost hop of the Forwarded header (or, without
// one, X-Forwarded-For) that is not a trusted proxy, walking left past
// trusted ones. A hop the trusted proxy could not name ("unknown", an
// obfuscated identifier, garbage) stops the walk at that proxy: its
// address stands for the client, the conservative choice for limits. The
// result is an address, with ":PORT" only when it is remote itself.
func ClientAddr(remote string, h http.Header, trusted Set) string {
	if len(trusted) == 0 {
		return remote
	}
	peer, ok := addrOf(remote)
	if !ok || !trusted.Contains(peer) {
		return remote
	}
	hops, ok := ForwardedFor(h)
	if !ok {
		hops, ok = XForwardedFor(h)
	}
	if !ok {
		return remote
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		if !hops[i].IsValid() {
			break // named by a trusted proxy as unknown: stop at that proxy
		}
		client = hops[i]
		if !trusted.Contains(client) {
			break
		}
	}
	if client == peer {
		return remote
	}
	return client.String()
}

// ForwardedFor returns the for= addresses of the Forwarded headers (RFC
// 7239), oldest hop first; a hop whose for= is missing, "unknown", an
// obfuscated identifier or not an address is the zero Addr. ok is false
// when there is no Forwarded header, or it is longer than is plausible.
func ForwardedFor(h http.Header) (hops []netip.Addr, ok bool) {
	vs := h.Values("Forwarded")
	if len(vs) == 0 || tooLong(vs) {
		return nil, false
	}
	for _, v := range vs {
		for _, elem := range splitQuoted(v, ',') {
			var hop netip.Addr
			for _, pair := range splitQuoted(elem, ';') {
				k, val, found := strings.Cut(pair, "=")
				if !found || !strings.EqualFold(strings.TrimSpace(k), "for") {
					continue
				}
				hop = forNode(strings.TrimSpace(val))
			}
			hops = append(hops, hop)
			if len(hops) > maxHops {
				return nil, false
			}
		}
	}
	return hops, true
}

// XForwardedFor returns the addresses of X-Forwarded-For headers, oldest
// hop first, with the zero Addr for an entry that is not an address.
func XForwardedFor(h http.Header) (hops []netip.Addr, ok bool) {
	vs := h.Values("X-Forwarded-For")
	if len(vs) == 0 || tooLong(vs) {
		return nil, false
	}
	for _, v := range vs {
		for _, f := range strings.Split(v, ",") {
			a, _ := addrOf(strings.TrimSpace(f))
			hops = append(hops, a)
			if len(hops) > maxHops {
				return nil, false
			}
		}
	}
	return hops, true
}

// forNode reads a node of RFC 7239 §6: a token or a quoted string holding
// IPv4, "[IPv6]", either with ":port", "unknown" or "_obfuscated".
func forNode(v string) netip.Addr {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = strings.ReplaceAll(v[1:len(v)-1], `\`, "") // quoted-pair: a backslash escapes the next character
	}
	a, _ := addrOf(v)
	return a
}

// addrOf reads "IP", "IP:PORT", "[IPv6]" or "[IPv6]:PORT".
func addrOf(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// splitQuoted splits s at sep outside double-quoted strings.
func splitQuoted(s string, sep byte) []string {
	var out []string
	quoted, escaped, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func tooLong(vs []string) bool {
	n := 0
	for _, v := range vs {
		n += len(v)
	}
	return n > maxHeaderBytes
}
