//go:build linux

package natlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/icetcp/icetcp/internal/lab/proxyd"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// startProxyCell prepares a cell whose A or B is proxy-only (nil, nil
// otherwise): certificates for the server, and the proxies kinds names on
// each proxy-only gateway, waited for from the peer behind it.
func (l *Lab) startProxyCell(ctx context.Context, kinds []ProxyKind, relay Relay) (_ *proxyCell, err error) {
	var hosts, gws []Host
	if isProxyOnly(l.A.Profile) {
		hosts, gws = append(hosts, l.A), append(gws, l.GatewayA)
	}
	if isProxyOnly(l.B.Profile) && l.B.NS != "" && l.GatewayB.NS != "" {
		hosts, gws = append(hosts, l.B), append(gws, l.GatewayB)
	}
	if len(hosts) == 0 {
		return nil, nil
	}
	if relay == RelayCoturn {
		return nil, fmt.Errorf("natlab: %s cells need the embedded relay (turns: on 443), not coturn", ProxyOnly)
	}
	if !proxyd.Installed() {
		return nil, proxyd.ErrNotInstalled
	}
	if len(kinds) == 0 {
		kinds = []ProxyKind{ProxySquidAuth}
	}
	p := &proxyCell{kinds: kinds}
	defer func() {
		if err != nil {
			p.stop()
		}
	}()
	if p.dir, err = os.MkdirTemp("", "natlab-proxy-"); err != nil {
		return nil, fmt.Errorf("natlab: %w", err)
	}
	ca, err := signalingtest.NewCA(ServerAddr.String(), Signal443.String())
	if err != nil {
		return nil, err
	}
	p.ca, p.cert, p.key = filepath.Join(p.dir, "ca.pem"), filepath.Join(p.dir, "cert.pem"), filepath.Join(p.dir, "key.pem")
	for f, b := range map[string][]byte{p.ca: ca.CertPEM, p.cert: ca.ServerCertPEM, p.key: ca.ServerKeyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return nil, fmt.Errorf("natlab: %w", err)
		}
	}
	var pass [8]byte
	rand.Read(pass[:])
	p.pass = hex.EncodeToString(pass[:])
	for i, h := range hosts {
		for _, k := range kinds {
			srv, err := l.startProxy(ctx, h, gws[i], k, p.pass)
			if err != nil {
				return nil, err
			}
			p.stops = append(p.stops, srv.Stop)
			p.logs = append(p.logs, func() string { return fmt.Sprintf("\n--- %s on %s ---\n%s", k, gws[i].Name, srv.Log()) })
		}
	}
	return p, nil
}

// startProxy runs kind in gw's namespace for the proxy-only peer h behind
// it, tunnelling to port 443 only, and waits until h can reach it.
func (l *Lab) startProxy(ctx context.Context, h, gw Host, kind ProxyKind, pass string) (*proxyd.Server, error) {
	ap := ProxyAddr(h, kind)
	c := proxyd.Common{
		ListenIP: ap.Addr(), Port: ap.Port(), Ports: []uint16{443},
		Wrap: func(name string, args ...string) *exec.Cmd { return l.Command(ctx, gw, name, args...) },
		Probe: func(ctx context.Context, ap netip.AddrPort) bool {
			r, _ := l.ProbeTCP(ctx, h, ap, time.Second)
			return r == Connected
		},
	}
	switch kind {
	case ProxySquid:
		return proxyd.StartSquid(ctx, proxyd.SquidConfig{Common: c})
	case ProxySquidAuth:
		return proxyd.StartSquid(ctx, proxyd.SquidConfig{Common: c, Users: map[string]string{ProxyUser: pass}})
	case ProxyDante:
		return proxyd.StartDante(ctx, proxyd.DanteConfig{Common: c, External: gw.Addr})
	case ProxyDanteAuth:
		return proxyd.StartDante(ctx, proxyd.DanteConfig{Common: c, External: gw.Addr, Users: map[string]string{ProxyUser: pass}})
	}
	return nil, fmt.Errorf("natlab: unknown proxy %q", kind)
}

// StartProxy runs kind on the gateway of the proxy-only peer h (A or B)
// with pass as the password of squid-auth or dante-auth, and returns connect's --proxy URL;
// stop ends it (Close does too).
func (l *Lab) StartProxy(ctx context.Context, h Host, kind ProxyKind, pass string) (url string, stop func(), err error) {
	gw := l.GatewayA
	if h.Name == "B" {
		gw = l.GatewayB
	}
	if !isProxyOnly(h.Profile) || gw.NS == "" {
		return "", nil, fmt.Errorf("natlab: %s is not behind a %s gateway", h.Name, ProxyOnly)
	}
	srv, err := l.startProxy(ctx, h, gw, kind, pass)
	if err != nil {
		return "", nil, err
	}
	return ProxyURL(h, kind, pass), srv.Stop, nil
}
