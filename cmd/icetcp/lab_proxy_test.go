//go:build lab

package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/natlab"
	"github.com/icetcp/icetcp/secure"
)

// proxyCells: a peer whose network has no way out but a proxy, against a
// NAT that punches, one that does not, and a public peer.
var proxyCells = []natlab.Cell{
	{A: natlab.ProxyOnly, B: "preserve-rst"},
	{A: natlab.ProxyOnly, B: "symmetric"},
	{A: natlab.ProxyOnly, B: "public"},
}

// labProxies: one trial each, in this order, in every cell.
var labProxies = []natlab.ProxyKind{natlab.ProxySquidAuth, natlab.ProxyDante, natlab.ProxySquid, natlab.ProxyDanteAuth}

func needLabProxies(t *testing.T) {
	t.Helper()
	needRoot(t)
	needProxies(t)
}

// TestLabProxyOnly: behind a gateway that forwards nothing, the peer
// reaches the rendezvous (wss:// on 443) and its relay (turns: on 443)
// through squid with Basic credentials, dante (SOCKS5), squid without
// credentials and dante with username/password, which tunnel to port 443
// only, and connects over the relay
// to a peer behind preserve-rst, symmetric and on the public side, with
// 10 MiB each way compared byte for byte by the runner. The gateway
// forwards nothing, so every byte went through the proxy.
func TestLabProxyOnly(t *testing.T) {
	needLabProxies(t)
	res := runCells(t, natlab.MatrixConfig{
		Delay: delayline.LinkConfig{Delay: 20 * time.Millisecond}, Cells: proxyCells,
		Proxies: labProxies, Trials: len(labProxies), PayloadSize: 10 << 20, Timeout: time.Minute, MaxFailures: 1,
	})
	logTable(t, res)
	for _, want := range proxyCells {
		c := cell(t, res, want.A, want.B)
		for i, tr := range c.Results {
			if !tr.OK || !natlab.IsRelayPath(tr.Path) {
				t.Errorf("%s×%s through %s: ok=%v path %q: %s", want.A, want.B, labProxies[i], tr.OK, tr.Path, tr.Reason)
			}
		}
		if len(c.Results) != len(labProxies) {
			t.Errorf("%s×%s: %d trials ran, want %d", want.A, want.B, len(c.Results), len(labProxies))
		}
	}
}

// TestLabProxyWrongCredentials: a proxy-only peer with a wrong password
// for squid gets exit code 3 and an error naming the proxy and its 407
// from the rendezvous dial, at once (--timeout is 2 minutes; the test's
// context ends long before).
func TestLabProxyWrongCredentials(t *testing.T) {
	needLabProxies(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if left, _ := natlab.Leftovers(natlab.BasePrefix); len(left) > 0 {
			t.Errorf("lab left behind: %v", left)
		}
	})
	lab, err := natlab.New(ctx, natlab.Config{A: natlab.ProxyOnly, B: "public"})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	good, stop, err := lab.StartProxy(ctx, lab.A, natlab.ProxySquidAuth, "right-password")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	wrong := strings.Replace(good, "right-password", "wrong-password", 1)
	shown := strings.Replace(good, "right-password", "xxxxx", 1)
	cmd := lab.Command(ctx, lab.A, os.Args[0], "connect", "--signal", "wss://198.51.100.12:443",
		"--turn", "turns:198.51.100.10:443", "--turn-user", "lab", "--turn-pass", "p", "--proxy", wrong, "--timeout", "2m")
	cmd.Env = append(os.Environ(), "ICETCP_MAIN=1", "ICETCP_SECRET="+secure.NewSecret().String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	if code := exitCode(err); code != exitProxyRefused {
		t.Fatalf("exit %d (%v), want %d:\n%s", code, err, exitProxyRefused, stderr.String())
	}
	for _, w := range []string{"proxy " + shown + " refused CONNECT ", ": 407 Proxy Authentication Required"} {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr does not say %q:\n%s", w, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "wrong-password") {
		t.Errorf("stderr shows the password:\n%s", stderr.String())
	}
	t.Logf("%s", strings.TrimSpace(stderr.String()))
}

// TestLabProxiesFlag: an unknown proxy is a usage error before anything
// is built (no root needed).
func TestLabProxiesFlag(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run([]string{"lab", "--proxies", "squid,socks4"}, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), `unknown proxy "socks4"`) {
		t.Errorf("exit %d, stderr %q; want 2 naming socks4", code, stderr.String())
	}
}
