package proxyd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// DanteConfig describes one danted (SOCKS5).
type DanteConfig struct {
	Common
	// External is the address danted connects to targets from; zero
	// means ListenIP.
	External netip.Addr
	// Users are RFC 1929 username/password credentials (user → password)
	// danted requires; nil means none. danted checks system accounts, so
	// it then runs in a mount namespace of its own (unshare) where
	// /etc/passwd and /etc/shadow are files of the proxy's folder holding
	// these users (and root and nobody, whom danted runs as): the host's
	// accounts are neither changed nor copied.
	Users map[string]string
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
	b.WriteString("clientmethod: none\n")
	if cfg.Users != nil {
		b.WriteString("socksmethod: username\n")
	} else {
		b.WriteString("socksmethod: none\n")
	}
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
	args := []string{"-f", conf, "-N", "1", "-p", filepath.Join(dir, "danted.pid")}
	if cfg.Users == nil {
		return start(ctx, "danted", cfg.Common, dir, DanteBinary, args...)
	}
	if err := writeAccounts(dir, cfg.Users); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("proxyd: danted: %w", err)
	}
	script := fmt.Sprintf("mount --bind %s /etc/passwd && mount --bind %s /etc/shadow && exec %s \"$@\"",
		filepath.Join(dir, "passwd"), filepath.Join(dir, "shadow"), lookPath(DanteBinary))
	return start(ctx, "danted", cfg.Common, dir, "unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "danted"}, args...)...)
}

// writeAccounts writes passwd (root, nobody and the users) and shadow
// (the users' SHA-512 crypt hashes from openssl) into dir.
func writeAccounts(dir string, users map[string]string) error {
	var passwd, shadow strings.Builder
	passwd.WriteString("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	for i, u := range names {
		cmd := exec.Command(lookPath("openssl"), "passwd", "-6", "-stdin")
		cmd.Stdin = strings.NewReader(users[u] + "\n")
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("openssl passwd: %w", err)
		}
		fmt.Fprintf(&passwd, "%s:x:%d:%d::/nonexistent:/usr/sbin/nologin\n", u, 64000+i, 64000+i)
		fmt.Fprintf(&shadow, "%s:%s:20000:0:99999:7:::\n", u, strings.TrimSpace(string(out)))
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "shadow"), []byte(shadow.String()), 0o600)
}
