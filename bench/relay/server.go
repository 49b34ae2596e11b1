package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/pion/logging"
	turn "github.com/pion/turn/v5"

	"github.com/icetcp/icetcp/internal/lab/child"
	"github.com/icetcp/icetcp/internal/lab/coturn"
	"github.com/icetcp/icetcp/internal/relay"
)

const benchUser, benchPass = "bench", "bench-password"

// server is a relay under test running in its own process, so that its CPU
// time and memory are read the same way for both relays.
type server struct {
	name string
	addr netip.AddrPort
	pid  int
	// settle brings the process to a steady state before a memory reading:
	// for the Go relay a GC that returns freed memory to the OS.
	settle func() error
	stop   func() error
}

// childProfile is -server-cpuprofile, passed on to the child.
var childProfile string

// runChild is the -server mode: the embedded relay on 127.0.0.1, its
// address on stdout, commands on stdin ("gc"), until stdin closes.
func runChild(profile string) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	lf.Writer = os.Stderr
	s, err := relay.New(relay.Config{
		Users: map[string]string{benchUser: benchPass},
		// The bench measures capacity: one user and one source address
		// make all the allocations.
		MaxAllocationsPerUser: 1 << 30,
		MaxAllocations:        1 << 30,
		MaxConns:              1 << 30,
		MaxConnsPerSource:     1 << 30,
		AllowLoopbackPeers:    true, // the one-leg transfer's peer is on 127.0.0.1
		LoggerFactory:         lf,
	})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	fmt.Println(l.Addr())
	obeyParent()
	if err := s.Close(); err != nil {
		return err
	}
	if err := <-served; !errors.Is(err, relay.ErrServerClosed) {
		return err
	}
	return nil
}

// runBareChild is the -server-bare mode: pion/turn v5's own server with its
// port-range relay generator, for comparison.
func runBareChild() error {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	lf.Writer = os.Stderr
	realm := "pion"
	key := turn.GenerateAuthKey(benchUser, realm, benchPass)
	s, err := turn.NewServer(turn.ServerConfig{
		Realm: realm,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, key, ra.Username == benchUser
		},
		ListenerConfigs: []turn.ListenerConfig{{
			Listener: l,
			RelayAddressGenerator: &turn.RelayAddressGeneratorPortRange{
				RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1", MinPort: 49152, MaxPort: 65535,
			},
		}},
		LoggerFactory: lf,
	})
	if err != nil {
		return err
	}
	fmt.Println(l.Addr())
	obeyParent()
	return s.Close()
}

// obeyParent answers the parent's commands on stdin ("gc": collect and
// give freed memory back, then "ok") until stdin closes.
func obeyParent() {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "gc" {
			runtime.GC()
			debug.FreeOSMemory()
			fmt.Println("ok")
		}
	}
}

// startEmbedded re-executes this binary as the relay.
func startEmbedded() (*server, error) {
	return startChild("embedded relay", "-server", "-server-cpuprofile", childProfile)
}

// startBare re-executes this binary as a bare pion/turn server.
func startBare() (*server, error) {
	return startChild("pion/turn v5 (bare)", "-server-bare")
}

func startChild(name string, args ...string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	child.Prepare(cmd, false)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start relay child: %w", err)
	}
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("bench: relay child did not print its address: %w", err)
	}
	addr, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("bench: relay child printed %q: %w", line, err)
	}
	return &server{
		name: name, addr: addr, pid: cmd.Process.Pid,
		settle: func() error {
			if _, err := io.WriteString(stdin, "gc\n"); err != nil {
				return err
			}
			_, err := out.ReadString('\n')
			return err
		},
		stop: func() error {
			stdin.Close()
			return cmd.Wait()
		},
	}, nil
}

var coturnVersion = regexp.MustCompile(`Coturn-([0-9][0-9.]*)`)

func startCoturn() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := coturn.Start(ctx, coturn.Config{
		Users:              map[string]string{benchUser: benchPass},
		AllowLoopbackPeers: true, // both relayed addresses are on 127.0.0.1
	})
	if err != nil {
		return nil, err
	}
	name := "coturn"
	if m := coturnVersion.FindStringSubmatch(c.Log()); m != nil {
		name += " " + m[1]
	}
	return &server{
		name: name, addr: c.Addr(), pid: c.Pid(),
		settle: func() error { return nil },
		stop:   c.Stop,
	}, nil
}
