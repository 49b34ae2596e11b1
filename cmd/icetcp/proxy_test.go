package main

import (
	"context"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/proxyd"
	"github.com/icetcp/icetcp/secure"
)

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

func portOf(t *testing.T, hostport string) uint16 {
	t.Helper()
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

// TestConnectProxyRefusal: a proxy that refuses ends connect at once with
// exit code 3 and an error naming the proxy and its status, whether it
// refuses the rendezvous (wrong credentials: 407) or only the TURN server
// (a port it does not tunnel to: 403) — no wait for a peer or for checks
// to time out (--timeout is 2 minutes; the test's context ends first).
func TestConnectProxyRefusal(t *testing.T) {
	needProxies(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := startServeWith(t, ctx, "--turn-user", "alice", "--turn-pass", "wonderland")
	u, err := url.Parse(srv.url)
	if err != nil {
		t.Fatal(err)
	}
	signalPort := portOf(t, u.Host)
	// squid checks the port before the credentials: one that tunnels to
	// both servers, one to the rendezvous only.
	both, err := proxyd.StartSquid(ctx, proxyd.SquidConfig{
		Common: proxyd.Common{ListenIP: netip.MustParseAddr("127.0.0.4"), Ports: []uint16{signalPort, portOf(t, srv.stun)}},
		Users:  map[string]string{"carol": "s3cret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer both.Stop()
	signalOnly, err := proxyd.StartSquid(ctx, proxyd.SquidConfig{
		Common: proxyd.Common{ListenIP: netip.MustParseAddr("127.0.0.4"), Ports: []uint16{signalPort}},
		Users:  map[string]string{"carol": "s3cret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer signalOnly.Stop()
	shown := "http://carol:xxxxx@" + both.Addr().String()
	for _, tc := range []struct {
		name, proxy string
		json        bool
		want        []string
	}{
		{"wrong credentials", "http://carol:guess@" + both.Addr().String(), false,
			[]string{"icetcp connect: ", "proxy " + shown + " refused CONNECT ", ": 407 Proxy Authentication Required"}},
		{"wrong credentials, json", "http://carol:guess@" + both.Addr().String(), true,
			[]string{`"event":"failed"`, `"proxy":"` + shown + `"`, `"proxy_status":407`}},
		{"TURN port forbidden", "http://carol:s3cret@" + signalOnly.Addr().String(), false,
			[]string{"icetcp connect: agent: TURN turn:" + srv.stun + ": ", "refused CONNECT " + srv.stun + ": 403 Forbidden"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"connect", "--signal", srv.url, "--addrs", "127.0.0.1", "--secret", secure.NewSecret().String(),
				"--turn", "turn:" + srv.stun, "--turn-user", "alice", "--turn-pass", "wonderland", "--proxy", tc.proxy, "--timeout", "2m"}
			if tc.json {
				args = append(args, "--json")
			}
			cmd := icetcp(ctx, args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			if code := exitCode(err); code != exitProxyRefused {
				t.Fatalf("exit %d (%v), want %d:\n%s", code, err, exitProxyRefused, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "guess") || strings.Contains(stderr.String(), "s3cret") {
				t.Errorf("stderr shows the proxy password:\n%s", stderr.String())
			}
		})
	}
}

// TestConnectProxyFlag: --proxy is checked before anything is dialed.
func TestConnectProxyFlag(t *testing.T) {
	for _, p := range []string{"https://proxy.corp", "gopher://x", "http://proxy.corp:" + strconv.Itoa(70000)} {
		var stderr strings.Builder
		code := run([]string{"connect", "--signal", "ws://127.0.0.1:1", "--room", "r", "--proxy", p}, strings.NewReader(""), &strings.Builder{}, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "--proxy") {
			t.Errorf("--proxy %s: exit %d, %q; want a usage error", p, code, stderr.String())
		}
	}
}
