// Package coturn starts a real coturn TURN server (Debian's `coturn`
// package, binary turnserver) for tests, benchmarks and the NAT lab: the
// relay tests run against it beside the embedded relay, because no fake
// proves interoperability.
//
// It is test infrastructure, not part of the product: nothing in the agent
// imports it.
package coturn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/icetcp/icetcp/internal/lab/child"
)

// Binary is the coturn executable's name.
const Binary = "turnserver"

// ErrNotInstalled means turnserver is not on PATH.
var ErrNotInstalled = errors.New("coturn: turnserver not installed (apt-get install coturn)")

// Config describes one coturn instance. The zero value is a TURN server on
// 127.0.0.1 with a free port, no users and loopback peers refused.
type Config struct {
	// ListenIP is the listening and relay address; zero means 127.0.0.1.
	ListenIP netip.Addr
	// Port is the STUN/TURN port (TCP; UDP is off); zero picks a free one
	// (only valid when the caller's network is the one coturn runs in).
	Port uint16
	// TLSPort, with TLSCert and TLSKey, adds a TURN-over-TLS listener.
	TLSPort         uint16
	TLSCert, TLSKey string
	// MinPort and MaxPort bound relay ports; zero means 49152-65535.
	MinPort, MaxPort uint16
	// Realm; empty means "icetcp.test".
	Realm string
	// Users are long-term credentials (user → password).
	Users map[string]string
	// Secret enables TURN REST credentials (--use-auth-secret).
	Secret string
	// AllowLoopbackPeers lets peers on 127.0.0.0/8 be relayed to (tests on
	// loopback need it).
	AllowLoopbackPeers bool
	// UserQuota bounds concurrent allocations per user; zero: unlimited.
	UserQuota int
	// Wrap, when set, turns the turnserver command line into the command to
	// run, e.g. to run it inside a network namespace with `ip netns exec`.
	Wrap func(name string, args ...string) *exec.Cmd
	// Dir holds the pid and log files; empty means a new temporary folder
	// removed by Stop.
	Dir string
	// Extra flags appended to the command line.
	Extra []string

	// pickPort chooses the listening port when Port is zero; nil: a port
	// the OS calls free. Tests set it.
	pickPort func(netip.Addr) (uint16, error)
}

// Coturn is a running turnserver.
type Coturn struct {
	cfg    Config
	cmd    *exec.Cmd
	out    *child.Output
	dir    string
	ownDir bool
	addr   netip.AddrPort
	exited chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// Installed reports whether turnserver is on PATH.
func Installed() bool {
	_, err := exec.LookPath(Binary)
	return err == nil
}

// Args returns the turnserver command line (without the binary) for cfg,
// which must have its port and directory set.
func (cfg Config) Args(dir string) []string {
	ip := cfg.ListenIP
	if !ip.IsValid() {
		ip = netip.MustParseAddr("127.0.0.1")
	}
	realm := cfg.Realm
	if realm == "" {
		realm = "icetcp.test"
	}
	minP, maxP := cfg.MinPort, cfg.MaxPort
	if minP == 0 {
		minP = 49152
	}
	if maxP == 0 {
		maxP = 65535
	}
	args := []string{
		"-n", // no configuration file
		"--listening-ip=" + ip.String(), "--relay-ip=" + ip.String(),
		"--listening-port=" + strconv.Itoa(int(cfg.Port)),
		"--min-port=" + strconv.Itoa(int(minP)), "--max-port=" + strconv.Itoa(int(maxP)),
		"--realm=" + realm, "--fingerprint",
		"--no-udp", "--no-dtls", "--no-cli", "--no-multicast-peers",
		"--pidfile=" + filepath.Join(dir, "turnserver.pid"),
		"--log-file=stdout", "--simple-log",
	}
	if cfg.TLSPort != 0 && cfg.TLSCert != "" {
		args = append(args, "--tls-listening-port="+strconv.Itoa(int(cfg.TLSPort)),
			"--cert="+cfg.TLSCert, "--pkey="+cfg.TLSKey)
	} else {
		args = append(args, "--no-tls")
	}
	if cfg.Secret != "" {
		args = append(args, "--use-auth-secret", "--static-auth-secret="+cfg.Secret)
	} else {
		args = append(args, "--lt-cred-mech")
	}
	users := make([]string, 0, len(cfg.Users))
	for u := range cfg.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		args = append(args, "--user="+u+":"+cfg.Users[u])
	}
	if cfg.AllowLoopbackPeers {
		args = append(args, "--allow-loopback-peers")
	}
	if cfg.UserQuota > 0 {
		args = append(args, "--user-quota="+strconv.Itoa(cfg.UserQuota))
	}
	return append(args, cfg.Extra...)
}

// Start runs turnserver and waits until its TCP port accepts connections.
// Without Wrap the readiness check dials from this process; with Wrap the
// caller's ready function must be given through ctx's deadline only, so
// Start then waits for the "listener opened" line of coturn's log.
func Start(ctx context.Context, cfg Config) (*Coturn, error) {
	if cfg.Wrap == nil && !Installed() {
		return nil, ErrNotInstalled
	}
	ip := cfg.ListenIP
	if !ip.IsValid() {
		ip = netip.MustParseAddr("127.0.0.1")
		cfg.ListenIP = ip
	}
	if cfg.Port != 0 {
		return start(ctx, cfg, ip)
	}
	if cfg.Wrap != nil {
		return nil, errors.New("coturn: a wrapped turnserver needs an explicit port")
	}
	pick := cfg.pickPort
	if pick == nil {
		pick = freePort
	}
	// A free port is free when we look: another process can take it before
	// turnserver binds it (CI: 1 in ~1,200 starts beside busy relay
	// tests). Then another one is tried.
	for try := 1; ; try++ {
		p, err := pick(ip)
		if err != nil {
			return nil, err
		}
		cfg.Port = p
		c, err := start(ctx, cfg, ip)
		if !errors.Is(err, errPortTaken) || try == 3 {
			return c, err
		}
	}
}

// errPortTaken: turnserver could not bind its listening port.
var errPortTaken = errors.New("coturn: the listening port is taken")

func start(ctx context.Context, cfg Config, ip netip.Addr) (*Coturn, error) {
	c := &Coturn{cfg: cfg, out: &child.Output{}, exited: make(chan struct{}), addr: netip.AddrPortFrom(ip, cfg.Port)}
	c.dir = cfg.Dir
	if c.dir == "" {
		d, err := os.MkdirTemp("", "coturn-")
		if err != nil {
			return nil, fmt.Errorf("coturn: %w", err)
		}
		c.dir, c.ownDir = d, true
	}
	args := cfg.Args(c.dir)
	if cfg.Wrap != nil {
		c.cmd = cfg.Wrap(Binary, args...)
	} else {
		c.cmd = exec.Command(Binary, args...)
	}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	child.Prepare(c.cmd, false) // if this process dies, turnserver must not outlive it
	if err := c.cmd.Start(); err != nil {
		c.cleanDir()
		return nil, fmt.Errorf("coturn: start: %w", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Coturn) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		// turnserver retries a bind that failed, for good: say so at once.
		if strings.Contains(c.out.String(), "Address already in use") {
			return fmt.Errorf("%w: %s: %s", errPortTaken, c.addr, c.out.Tail(logTail))
		}
		if c.cfg.Wrap == nil {
			d := net.Dialer{Timeout: 200 * time.Millisecond}
			if conn, err := d.DialContext(ctx, "tcp", c.addr.String()); err == nil {
				conn.Close()
				return nil
			}
		} else if strings.Contains(c.out.String(), "Total General servers") ||
			strings.Contains(c.out.String(), "IPv4. TCP listener opened on") {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("coturn: turnserver exited before listening: %s", c.out.Tail(logTail))
		case <-ctx.Done():
			return fmt.Errorf("coturn: waiting for %s: %w", c.addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("coturn: %s not accepting after 15s: %s", c.addr, c.out.Tail(logTail))
		}
	}
}

// Addr is the TCP STUN/TURN address.
func (c *Coturn) Addr() netip.AddrPort { return c.addr }

// TLSAddr is the TURN-over-TLS address, or the zero value.
func (c *Coturn) TLSAddr() netip.AddrPort {
	if c.cfg.TLSPort == 0 {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(c.addr.Addr(), c.cfg.TLSPort)
}

// Pid is turnserver's process ID (of the wrapper when Wrap is set).
func (c *Coturn) Pid() int { return c.cmd.Process.Pid }

// Log returns what turnserver printed so far.
func (c *Coturn) Log() string { return c.out.String() }

// logTail is how much of turnserver's log an error quotes.
const logTail = 2000

// Stop sends SIGTERM, waits (coturn takes about 2 s to exit), then SIGKILL.
func (c *Coturn) Stop() error {
	c.stopOnce.Do(func() {
		if c.cmd.Process != nil {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.exited:
			case <-time.After(5 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.exited
			}
		}
		c.cleanDir()
	})
	return c.stopErr
}

// Kill ends turnserver at once with SIGKILL, as a crash would.
func (c *Coturn) Kill() {
	c.stopOnce.Do(func() {
		_ = c.cmd.Process.Kill()
		<-c.exited
		c.cleanDir()
	})
}

func (c *Coturn) cleanDir() {
	if c.ownDir {
		os.RemoveAll(c.dir)
	}
}

func freePort(ip netip.Addr) (uint16, error) {
	l, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		return 0, fmt.Errorf("coturn: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort().Port(), nil
}
