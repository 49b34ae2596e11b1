package proxyd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// DanteConfig describes one danted (SOCKS5, no authentication).
type DanteConfig struct {
	Common
	// External is the address danted connects to targets from; zero
	// means ListenIP.
	External netip.Addr
}

// StartDante runs danted in the foreground as a SOCKS5 proxy that accepts
// every client and tunnels (CONNECT command) to cfg.Ports, blocking and
// logging the rest, and waits until it listens.
func StartDante(ctx context.Context, cfg DanteConfig) (*Server, error) {
	if !Installed() {
		return nil, ErrNotInstalled
	}
	dir, err := prepare(&cfg.Common, "danted-")
	if err != nil {
		return nil, err
	}
	ext := cfg.External
	if !ext.IsValid() {
		ext = cfg.ListenIP
	}
	var b strings.Builder
	b.WriteString("logoutput: stderr\n")
	fmt.Fprintf(&b, "internal: %s port = %d\n", cfg.ListenIP, cfg.Port)
	fmt.Fprintf(&b, "external: %s\n", ext)
	b.WriteString("clientmethod: none\nsocksmethod: none\n")
	b.WriteString("user.privileged: root\nuser.unprivileged: nobody\n")
	b.WriteString("client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }\n")
	if cfg.Ports == nil {
		b.WriteString("socks pass {\n\tfrom: 0.0.0.0/0 to: 0.0.0.0/0\n\tcommand: connect\n\tlog: connect error\n}\n")
	}
	for _, p := range cfg.Ports {
		fmt.Fprintf(&b, "socks pass {\n\tfrom: 0.0.0.0/0 to: 0.0.0.0/0 port = %d\n\tcommand: connect\n\tlog: connect error\n}\n", p)
	}
	b.WriteString("socks block {\n\tfrom: 0.0.0.0/0 to: 0.0.0.0/0\n\tlog: connect error\n}\n")
	conf := filepath.Join(dir, "danted.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("proxyd: danted: %w", err)
	}
	return start(ctx, "danted", cfg.Common, dir, DanteBinary, "-f", conf, "-N", "1", "-p", filepath.Join(dir, "danted.pid"))
}
