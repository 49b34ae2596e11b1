package natlab

import (
	"net/netip"
	"strings"
	"testing"
)

// TestProxyProfile: proxy-only is found by name and rendered from the run
// prefix, but stays out of the NAT catalogue (NAT probes and natcheck do
// not apply to a network without a route out).
func TestProxyProfile(t *testing.T) {
	p, err := ProfileByName(ProxyOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range Profiles() {
		if q.Name == ProxyOnly {
			t.Fatal("proxy-only is in the NAT catalogue")
		}
	}
	rs, err := p.Ruleset(RulesData{Table: "itlx", WAN: "itlxt", LAN: "itlxbr", WANAddr: netip.MustParseAddr("203.0.113.1")})
	if err != nil || !strings.Contains(rs, "table ip itlx {") || !strings.Contains(rs, "policy drop") || strings.Contains(rs, "masquerade") {
		t.Errorf("ruleset %q, %v: want a forward chain that drops everything, and no NAT", rs, err)
	}
	if _, err := ProfileByName("nope"); err == nil || !strings.Contains(err.Error(), ProxyOnly) {
		t.Errorf("unknown profile error %v should list proxy-only too", err)
	}
	a := Host{Name: "A", Profile: ProxyOnly, Addr: netip.MustParseAddr("10.0.1.2")}
	for kind, want := range map[ProxyKind]string{
		ProxySquid: "http://10.0.1.1:3128", ProxySquidAuth: "http://lab:pw@10.0.1.1:3129", ProxyDante: "socks5://10.0.1.1:1080",
		ProxyDanteAuth: "socks5://lab:pw@10.0.1.1:1081",
	} {
		if got := ProxyURL(a, kind, "pw"); got != want {
			t.Errorf("ProxyURL(%s) = %s, want %s", kind, got, want)
		}
	}
	if _, err := ParseProxyKinds("squid,socks4"); err == nil {
		t.Error("ParseProxyKinds accepted socks4")
	}
}

// TestProxyCellRotation: trials take the proxies in turn; a second
// proxy-only peer in the same trial uses the same kind.
func TestProxyCellRotation(t *testing.T) {
	p := &proxyCell{kinds: []ProxyKind{ProxySquidAuth, ProxyDante}, ca: "ca.pem", pass: "pw"}
	s := &servers{relay: RelayEmbedded, turnPass: "tp"}
	a := Host{Name: "A", Profile: ProxyOnly, Addr: netip.MustParseAddr("10.0.1.2")}
	b := Host{Name: "B", Profile: ProxyOnly, Addr: netip.MustParseAddr("10.0.1.3")}
	pub := Host{Name: "B", Profile: "public", Addr: netip.MustParseAddr("203.0.113.12")}
	var got []ProxyKind
	for range 3 {
		args, _, ka := p.connectArgs(s, a)
		_, _, kb := p.connectArgs(s, b)
		if ka != kb {
			t.Fatalf("A %s, B %s in one trial", ka, kb)
		}
		if !strings.Contains(strings.Join(args, " "), "--turn turns:198.51.100.10:443") || !strings.Contains(strings.Join(args, " "), "--signal wss://198.51.100.12:443") {
			t.Fatalf("proxy-only args %q", args)
		}
		got = append(got, ka)
	}
	if want := []ProxyKind{ProxySquidAuth, ProxyDante, ProxySquidAuth}; strings.Join(kinds(got), ",") != strings.Join(kinds(want), ",") {
		t.Errorf("kinds %v, want %v", got, want)
	}
	args, env, k := p.connectArgs(s, pub)
	if k != "" || strings.Contains(strings.Join(args, " "), "--proxy") || !strings.Contains(strings.Join(args, " "), "--ca ca.pem") || len(env) != 1 {
		t.Errorf("the other peer: %q %q %q", args, env, k)
	}
}

func kinds(ks []ProxyKind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
}
