package trustproxy

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	trusted, err := ParseSet([]string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	for _, tc := range []struct {
		name, remote string
		h            http.Header
		want         string
	}{
		{"untrusted peer's header is not read", "203.0.113.9:5000", h("X-Forwarded-For", "1.2.3.4"), "203.0.113.9:5000"},
		{"trusted proxy names the client", "10.1.2.3:5000", h("X-Forwarded-For", "1.2.3.4"), "1.2.3.4"},
		{"a client's own XFF entry is ignored", "10.1.2.3:5000", h("X-Forwarded-For", "6.6.6.6, 1.2.3.4"), "1.2.3.4"},
		{"walk past trusted hops", "10.1.2.3:5000", h("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.9.9.9, 192.0.2.1"), "1.2.3.4"},
		{"all hops trusted: the leftmost", "10.1.2.3:5000", h("X-Forwarded-For", "10.0.0.7, 10.0.0.8"), "10.0.0.7"},
		{"several XFF headers in order", "10.1.2.3:5000", h("X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "1.2.3.4"), "1.2.3.4"},
		{"Forwarded wins over XFF", "10.1.2.3:5000", h("Forwarded", "for=1.2.3.4;proto=https", "X-Forwarded-For", "5.6.7.8"), "1.2.3.4"},
		{"Forwarded, quoted IPv6 with port", "192.0.2.1:443", h("Forwarded", `for="[2a00:1450::17]:4711"`), "2a00:1450::17"},
		{"Forwarded, several elements", "10.1.2.3:5000", h("Forwarded", `for=6.6.6.6, for=1.2.3.4;by=10.1.2.3`), "1.2.3.4"},
		{"Forwarded, case and spaces", "10.1.2.3:5000", h("Forwarded", `proto=https; For = 1.2.3.4`), "1.2.3.4"},
		{"unknown stops at the proxy", "10.1.2.3:5000", h("Forwarded", "for=unknown"), "10.1.2.3:5000"},
		{"obfuscated stops at the proxy that said it", "10.1.2.3:5000", h("Forwarded", "for=_hidden, for=10.0.0.9"), "10.0.0.9"},
		{"garbage stops at the proxy", "10.1.2.3:5000", h("X-Forwarded-For", "1.2.3.4, not-an-ip"), "10.1.2.3:5000"},
		{"no header: the proxy", "10.1.2.3:5000", h(), "10.1.2.3:5000"},
		{"trusted IPv6 proxy", "[2001:db8::1]:443", h("X-Forwarded-For", "198.51.100.7"), "198.51.100.7"},
		{"mapped IPv4 peer is trusted", "[::ffff:10.1.2.3]:5000", h("X-Forwarded-For", "1.2.3.4"), "1.2.3.4"},
		{"too many hops: the proxy", "10.1.2.3:5000", h("X-Forwarded-For", strings.Repeat("1.1.1.1,", maxHops)+"1.2.3.4"), "10.1.2.3:5000"},
		{"zone in a hop is not an address", "10.1.2.3:5000", h("X-Forwarded-For", "fe80::1%eth0"), "10.1.2.3:5000"},
	} {
		if got := ClientAddr(tc.remote, tc.h, trusted); got != tc.want {
			t.Errorf("%s: ClientAddr = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := ClientAddr("10.1.2.3:5000", h("X-Forwarded-For", "1.2.3.4"), nil); got != "10.1.2.3:5000" {
		t.Errorf("nobody trusted: %q", got)
	}
}

func TestParseSet(t *testing.T) {
	s, err := ParseSet([]string{"10.0.0.1/8", " 192.0.2.1 ", "::ffff:198.51.100.1"})
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]bool{"10.200.0.1": true, "192.0.2.1": true, "192.0.2.2": false, "198.51.100.1": true, "::ffff:10.0.0.5": true} {
		if got := s.Contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("Contains(%s) = %v", a, got)
		}
	}
	if _, err := ParseSet([]string{"10.0.0.0/33"}); err == nil || !strings.Contains(err.Error(), "10.0.0.0/33") {
		t.Errorf("bad CIDR: %v", err)
	}
}

// FuzzClientAddr: any headers from a trusted proxy give either the proxy
// or an address its headers named; an untrusted peer always gets itself.
func FuzzClientAddr(f *testing.F) {
	f.Add("for=1.2.3.4", "1.2.3.4", true)
	f.Add(`for="[::1]:80", for=unknown;by=x`, "", true)
	f.Add(`for="\"`, "a,b,,", false)
	trusted := Set{netip.MustParsePrefix("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, fwd, xff string, fromProxy bool) {
		remote := "203.0.113.1:1000"
		if fromProxy {
			remote = "10.0.0.1:1000"
		}
		h := http.Header{}
		if fwd != "" {
			h.Set("Forwarded", fwd)
		}
		if xff != "" {
			h.Set("X-Forwarded-For", xff)
		}
		got := ClientAddr(remote, h, trusted)
		if got == remote {
			return
		}
		if !fromProxy {
			t.Fatalf("untrusted peer renamed to %q", got)
		}
		if a, err := netip.ParseAddr(got); err != nil || a.Zone() != "" || fwd+xff == "" {
			t.Fatalf("ClientAddr = %q (%v) from Forwarded %q, X-Forwarded-For %q", got, err, fwd, xff)
		}
	})
}
