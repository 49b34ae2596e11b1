package agent

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/proxyd"
	relaysrv "github.com/icetcp/icetcp/internal/relay"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// Real squid and dante on loopback (127.0.0.4) in front of the embedded
// relay (127.0.0.2, TURN over TCP and over TLS). The agent behind the
// proxy may dial nothing but the proxy (proxyOnlyNet): its control
// connection and every data connection must go through it.

func needProxies(t *testing.T) {
	t.Helper()
	if proxyd.Installed() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(proxyd.ErrNotInstalled.Error() + " and CI=true forbids skipping")
	}
	t.Skip(proxyd.ErrNotInstalled.Error() + "; skipped")
}

var proxyIP = netip.MustParseAddr("127.0.0.4")

// proxyOnlyNet is the host's network where only the proxy can be dialed.
func proxyOnlyNet() Network { return directToRelayOnly{&hostNetwork{}, proxyIP} }

// startTLSRelay runs the embedded relay on 127.0.0.2 over TCP and TLS.
func startTLSRelay(t *testing.T) (plain, secure netip.AddrPort, roots *tls.Config) {
	t.Helper()
	ca, err := signalingtest.NewCA("127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	lt, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relaysrv.New(relaysrv.Config{Users: map[string]string{"alice": "wonderland"}, AllowLoopbackPeers: true, LoggerFactory: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	go srv.ServeTLS(lt, &tls.Config{Certificates: []tls.Certificate{ca.Server}})
	t.Cleanup(func() { srv.Close() })
	return addrPortOf(l.Addr()), addrPortOf(lt.Addr()), &tls.Config{RootCAs: ca.Pool}
}

// TestRelayThroughProxy: an agent that can reach nothing but a proxy
// allocates through it (turns: through squid with Basic credentials, turn:
// through dante's SOCKS5), connects to its peer over the relay and moves
// 1 MiB each way; the event and Stats say the relay was reached through
// the proxy. The agent's network dials nothing but the proxy, so the
// control connection and the data connections of the relayed pair can
// only have gone through it.
func TestRelayThroughProxy(t *testing.T) {
	needProxies(t)
	plain, secure, roots := startTLSRelay(t)
	ports := []uint16{plain.Port(), secure.Port()}
	for _, tc := range []struct {
		name  string
		start func() (*proxyd.Server, error)
		url   func(*proxyd.Server) string
		shown func(*proxyd.Server) string
		turn  netip.AddrPort
		uri   string
	}{
		{name: "squid turns", turn: secure, uri: "turns:",
			start: func() (*proxyd.Server, error) {
				return proxyd.StartSquid(t.Context(), proxyd.SquidConfig{Common: proxyd.Common{ListenIP: proxyIP, Ports: ports},
					Users: map[string]string{"carol": "s3cret"}})
			},
			url:   func(p *proxyd.Server) string { return "http://carol:s3cret@" + p.Addr().String() },
			shown: func(p *proxyd.Server) string { return "http://carol:xxxxx@" + p.Addr().String() }},
		{name: "dante turn", turn: plain, uri: "turn:",
			start: func() (*proxyd.Server, error) {
				return proxyd.StartDante(t.Context(), proxyd.DanteConfig{Common: proxyd.Common{ListenIP: proxyIP, Ports: ports}})
			},
			url:   func(p *proxyd.Server) string { return "socks5://" + p.Addr().String() },
			shown: func(p *proxyd.Server) string { return "socks5://" + p.Addr().String() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.start()
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			ca := relayConfigs(tc.turn, TURNServer{Username: "alice", Password: "wonderland", TLSConfig: roots}, RoleControlling)
			ca.TURNServers[0].URI = tc.uri + tc.turn.String()
			ca.Proxy, ca.Network = tc.url(p), proxyOnlyNet()
			relays := make(chan *RelayStats, 4)
			ca.OnEvent = func(e Event) {
				if e.Type == EventRelay {
					relays <- e.Relay
				}
			}
			cb := relayConfigs(plain, TURNServer{Username: "alice", Password: "wonderland"}, RoleControlled)
			x, y := mustConnect(t, ca, cb)
			if x.Path() != "relay" || y.Path() != "relay" {
				t.Fatalf("paths %s/%s", x.Path(), y.Path())
			}
			exchange(t, x, y, 1<<20)
			st := x.Agent().Stats()
			if len(st.Relays) != 1 || st.Relays[0].Proxy != tc.shown(p) || st.Relays[0].Server != ca.TURNServers[0].URI {
				t.Errorf("Stats.Relays = %+v, want one through %s", st.Relays, tc.shown(p))
			}
			select {
			case r := <-relays:
				if r.Proxy != tc.shown(p) || !r.Relayed.IsValid() {
					t.Errorf("EventRelay %+v, want the proxy %s", r, tc.shown(p))
				}
			default:
				t.Error("no EventRelay")
			}
			if got := y.Agent().Stats().Relays; len(got) != 1 || got[0].Proxy != "" {
				t.Errorf("the direct peer's Stats.Relays = %+v, want no proxy", got)
			}
		})
	}
}

// TestRelayProxyRefusals: a proxy's 407 (wrong credentials) or 403 (a
// port it does not tunnel to) is a warning whose error is a *ProxyError
// naming the proxy and the status, and the direct path is still found.
func TestRelayProxyRefusals(t *testing.T) {
	needProxies(t)
	plain, _, _ := startTLSRelay(t)
	p, err := proxyd.StartSquid(t.Context(), proxyd.SquidConfig{Common: proxyd.Common{ListenIP: proxyIP},
		Users: map[string]string{"carol": "s3cret"}}) // tunnels to 443 only
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	for _, tc := range []struct {
		name, proxy, shown string
		status             int
	}{
		{"wrong password", "http://carol:guess@" + p.Addr().String(), "http://carol:xxxxx@" + p.Addr().String(), 407},
		{"port not tunnelled", "http://carol:s3cret@" + p.Addr().String(), "http://carol:xxxxx@" + p.Addr().String(), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := plain
			if tc.status == 407 {
				target = netip.AddrPortFrom(plain.Addr(), 443) // past the port rule: only credentials matter
			}
			err := directDespiteProxy(t, TURNServer{URI: "turn:" + target.String(), Username: "alice", Password: "wonderland"}, tc.proxy)
			var pe *ProxyError
			if !errors.As(err, &pe) || pe.Status != tc.status || !pe.Refused() {
				t.Fatalf("warning %v, want a refusal with status %d", err, tc.status)
			}
			for _, want := range []string{"proxy " + tc.shown + " refused CONNECT " + target.String(), ": " + itoa(tc.status)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("warning %q does not say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "guess") {
				t.Errorf("warning shows the password: %v", err)
			}
		})
	}
}

func itoa(n int) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(n)).String()[len("0.0.0.0:"):]
}

// directDespiteProxy connects two agents on loopback, the controlling one
// with ts reached through proxy, and returns the first warning.
func directDespiteProxy(t *testing.T, ts TURNServer, proxy string) error {
	t.Helper()
	warned := make(chan error, 8)
	ca := baseConfig(RoleControlling)
	ca.TURNServers, ca.DisableNATCheck, ca.Proxy = []TURNServer{ts}, true, proxy
	ca.OnEvent = func(e Event) {
		if e.Type == EventWarning {
			warned <- e.Err
		}
	}
	x, y := mustConnect(t, ca, baseConfig(RoleControlled))
	if x.Path() != "direct" {
		t.Fatalf("path %s", x.Path())
	}
	exchange(t, x, y, 4096)
	select {
	case err := <-warned:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no warning about the proxy")
		return nil
	}
}

// TestConfigProxy: New rejects a malformed Proxy and names the field; a
// malformed environment matters only with TURN servers.
func TestConfigProxy(t *testing.T) {
	for _, p := range []string{"https://proxy.corp", "ftp://proxy.corp", "http://proxy.corp:0"} {
		if _, err := New(Config{Proxy: p}); err == nil || !strings.Contains(err.Error(), "agent: config: Proxy") {
			t.Errorf("Proxy %q: %v", p, err)
		}
	}
	t.Setenv("HTTPS_PROXY", "ftp://proxy.corp")
	a, err := New(Config{})
	if err != nil {
		t.Errorf("bad HTTPS_PROXY without TURN servers: %v", err)
	} else {
		a.Close()
	}
	if _, err := New(Config{TURNServers: []TURNServer{{URI: "turn:198.51.100.10"}}}); err == nil || !strings.Contains(err.Error(), "$HTTPS_PROXY") {
		t.Errorf("bad HTTPS_PROXY with a TURN server: %v", err)
	}
	a, err = New(Config{Proxy: "direct", TURNServers: []TURNServer{{URI: "turn:198.51.100.10"}}})
	if err != nil {
		t.Errorf("Proxy direct despite a bad HTTPS_PROXY: %v", err)
	} else {
		a.Close()
	}
}
