// Package proxyd starts real proxies for tests and the NAT lab: Debian's
// squid (HTTP CONNECT, with or without Basic authentication) and
// dante-server (danted, SOCKS5), each with a configuration written into a
// temporary folder, on the address and port the caller names, so they
// never meet the system's own services. The agent's proxy support is
// tested against them because no fake proves that a real proxy lets a TURN
// allocation and its data connections through.
//
// It is test infrastructure, not part of the product: nothing in the agent
// imports it.
package proxyd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/icetcp/icetcp/internal/lab/child"
)

// Binaries, as Debian installs them.
const (
	SquidBinary = "squid"
	DanteBinary = "danted"
	// NCSAHelper checks Basic credentials against an htpasswd file.
	NCSAHelper = "/usr/lib/squid/basic_ncsa_auth"
)

// ErrNotInstalled means a proxy (or openssl, which hashes the test
// passwords, or unshare) is missing.
var ErrNotInstalled = errors.New("proxyd: squid, danted, openssl or unshare not installed (apt-get install squid dante-server openssl util-linux)")

// Installed reports whether squid, its NCSA helper, danted and openssl
// are there.
func Installed() bool {
	for _, b := range []string{SquidBinary, DanteBinary, "openssl", "unshare"} {
		if lookPath(b) == "" {
			return false
		}
	}
	_, err := os.Stat(NCSAHelper)
	return err == nil
}

// lookPath finds a binary on PATH or in /usr/sbin, where Debian puts
// squid and danted and which a non-login PATH may lack; "" if missing.
func lookPath(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if p := "/usr/sbin/" + name; isExecutable(p) {
		return p
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Common is what both proxies take.
type Common struct {
	// ListenIP is the address the proxy listens on; zero means 127.0.0.1.
	ListenIP netip.Addr
	// Port is its port; zero picks a free one (only without Wrap).
	Port uint16
	// Ports are the target ports the proxy tunnels to; nil means squid's
	// default for CONNECT (443 only) and, for dante, every port.
	Ports []uint16
	// Wrap, when set, turns the command line into the command to run, e.g.
	// inside a network namespace with `ip netns exec`; the caller then
	// kills it through its own means as well.
	Wrap func(name string, args ...string) *exec.Cmd
	// Probe, when set, tells whether the proxy accepts connections (from
	// the caller's namespace); nil dials ListenIP:Port from this process.
	Probe func(ctx context.Context, ap netip.AddrPort) bool
}

// Server is a running proxy.
type Server struct {
	name   string
	cmd    *exec.Cmd
	out    *child.Output
	dir    string
	addr   netip.AddrPort
	exited chan struct{}
	// cleanup removes what the proxy leaves outside its folder.
	cleanup func()

	stopOnce sync.Once
}

// Addr is where the proxy listens.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Log is what the proxy printed so far (for squid its cache and access
// logs too).
func (s *Server) Log() string {
	b := []byte(s.out.String())
	for _, f := range []string{"cache.log", "access.log"} {
		if l, err := os.ReadFile(s.dir + "/" + f); err == nil {
			b = append(append(b, "\n--- "+f+" ---\n"...), l...)
		}
	}
	return string(b)
}

// Stop kills the proxy and its helpers (SIGKILL to its process group: no
// state worth a graceful exit) and removes its folder.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if p := s.cmd.Process; p != nil {
			child.KillGroup(p)
		}
		<-s.exited
		os.RemoveAll(s.dir)
		if s.cleanup != nil {
			s.cleanup()
		}
	})
}

// start runs the proxy's command and waits until it accepts connections.
func start(ctx context.Context, name string, c Common, dir string, bin string, args ...string) (*Server, error) {
	s := &Server{name: name, out: &child.Output{}, dir: dir, addr: netip.AddrPortFrom(c.ListenIP, c.Port), exited: make(chan struct{})}
	bin = lookPath(bin)
	if c.Wrap != nil {
		s.cmd = c.Wrap(bin, args...)
	} else {
		s.cmd = exec.Command(bin, args...)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// Its own process group, so Stop reaches its helpers; and it must not
	// outlive this process.
	child.Prepare(s.cmd, true)
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("proxyd: start %s: %w", name, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(ctx, c.Probe); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, probe func(context.Context, netip.AddrPort) bool) error {
	if probe == nil {
		probe = func(ctx context.Context, ap netip.AddrPort) bool {
			d := net.Dialer{Timeout: 200 * time.Millisecond}
			c, err := d.DialContext(ctx, "tcp", ap.String())
			if err == nil {
				c.Close()
			}
			return err == nil
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if probe(ctx, s.addr) {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("proxyd: %s exited before listening on %s: %s", s.name, s.addr, child.Tail(s.Log(), 3000))
		case <-ctx.Done():
			return fmt.Errorf("proxyd: waiting for %s on %s: %w", s.name, s.addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proxyd: %s not accepting on %s after 20s: %s", s.name, s.addr, child.Tail(s.Log(), 3000))
		}
	}
}

// prepare fills defaults and makes the folder for the configuration.
func prepare(c *Common, prefix string) (string, error) {
	if !c.ListenIP.IsValid() {
		c.ListenIP = netip.MustParseAddr("127.0.0.1")
	}
	if c.Port == 0 {
		if c.Wrap != nil {
			return "", errors.New("proxyd: a wrapped proxy needs an explicit port")
		}
		p, err := freePort(c.ListenIP)
		if err != nil {
			return "", err
		}
		c.Port = p
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", fmt.Errorf("proxyd: %w", err)
	}
	// squid drops to its own user (proxy) and writes its logs and pid
	// file here.
	if err := os.Chmod(dir, 0o777); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("proxyd: %w", err)
	}
	return dir, nil
}

func freePort(ip netip.Addr) (uint16, error) {
	l, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		return 0, fmt.Errorf("proxyd: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort().Port(), nil
}
