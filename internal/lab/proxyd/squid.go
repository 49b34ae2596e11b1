package proxyd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// SquidConfig describes one squid.
type SquidConfig struct {
	Common
	// Users are Basic credentials (user → password) squid checks with its
	// NCSA helper; nil means no authentication.
	Users map[string]string
	// Realm of the Basic challenge; empty means "icetcp-test".
	Realm string
	// Hosts are names squid resolves from its own hosts file (and nobody
	// else does): a client that reaches such a name went through squid.
	Hosts map[string]netip.Addr
}

// StartSquid runs squid in the foreground (-N) as an HTTP proxy that only
// tunnels (CONNECT; everything else is denied) to cfg.Ports, asking for
// Basic credentials when cfg.Users is set, and waits until it listens.
func StartSquid(ctx context.Context, cfg SquidConfig) (*Server, error) {
	if !Installed() {
		return nil, ErrNotInstalled
	}
	dir, err := prepare(&cfg.Common, "squid-")
	if err != nil {
		return nil, err
	}
	conf, err := cfg.conf(dir)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "squid.conf"), []byte(conf), 0o644)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("proxyd: squid: %w", err)
	}
	// A service name of its own: squid names its shared-memory segments
	// after it (/dev/shm/NAME-cf__*.shm), which must neither meet another
	// squid's nor outlive this one (Stop kills it before it can unlink
	// them).
	var rnd [4]byte
	rand.Read(rnd[:])
	name := "icetcp" + hex.EncodeToString(rnd[:])
	s, err := start(ctx, "squid", cfg.Common, dir, SquidBinary, "-N", "-n", name, "-f", filepath.Join(dir, "squid.conf"))
	if err != nil {
		removeShm(name)
		return nil, err
	}
	s.cleanup = func() { removeShm(name) }
	return s, nil
}

// removeShm removes squid's shared-memory segments of service name.
func removeShm(name string) {
	files, _ := filepath.Glob(filepath.Join("/dev/shm", name+"-*"))
	for _, f := range files {
		os.Remove(f)
	}
}

// conf writes the htpasswd file, if any, and returns squid.conf.
func (cfg SquidConfig) conf(dir string) (string, error) {
	ports := cfg.Ports
	if ports == nil {
		ports = []uint16{443}
	}
	var pl []string
	for _, p := range ports {
		pl = append(pl, strconv.Itoa(int(p)))
	}
	realm := cfg.Realm
	if realm == "" {
		realm = "icetcp-test"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "http_port %s\n", cfg.addrPort())
	fmt.Fprintf(&b, "pid_filename %s\n", filepath.Join(dir, "squid.pid"))
	fmt.Fprintf(&b, "cache_log %s\n", filepath.Join(dir, "cache.log"))
	fmt.Fprintf(&b, "access_log stdio:%s\n", filepath.Join(dir, "access.log"))
	b.WriteString("cache deny all\ncache_mem 8 MB\npinger_enable off\nvisible_hostname icetcp-test\nshutdown_lifetime 0 seconds\n")
	b.WriteString("dns_timeout 5 seconds\n")
	if len(cfg.Hosts) > 0 {
		var hl strings.Builder
		for name, ip := range cfg.Hosts {
			fmt.Fprintf(&hl, "%s %s\n", ip, name)
		}
		hosts := filepath.Join(dir, "hosts")
		if err := os.WriteFile(hosts, []byte(hl.String()), 0o644); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "hosts_file %s\n", hosts)
	}
	fmt.Fprintf(&b, "acl tunnel_ports port %s\n", strings.Join(pl, " "))
	b.WriteString("acl CONNECT method CONNECT\n")
	b.WriteString("http_access deny !CONNECT\n")
	b.WriteString("http_access deny CONNECT !tunnel_ports\n")
	if cfg.Users != nil {
		passwd := filepath.Join(dir, "passwd")
		if err := writeHtpasswd(passwd, cfg.Users); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "auth_param basic program %s %s\n", NCSAHelper, passwd)
		b.WriteString("auth_param basic children 2 startup=1\n")
		fmt.Fprintf(&b, "auth_param basic realm %s\n", realm)
		b.WriteString("acl authenticated proxy_auth REQUIRED\n")
		b.WriteString("http_access deny !authenticated\n")
	}
	b.WriteString("http_access allow all\n")
	return b.String(), nil
}

func (cfg SquidConfig) addrPort() string {
	return fmt.Sprintf("%s:%d", cfg.ListenIP, cfg.Port)
}

// writeHtpasswd writes user:hash lines with APR1 (MD5) hashes made by
// openssl, which squid's NCSA helper checks.
func writeHtpasswd(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, u := range names {
		cmd := exec.Command(lookPath("openssl"), "passwd", "-apr1", "-stdin")
		cmd.Stdin = strings.NewReader(users[u] + "\n")
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("openssl passwd: %w", err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, strings.TrimSpace(string(out)))
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
