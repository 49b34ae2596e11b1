package natlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/natlab/netns"
)

// BasePrefix starts every name a lab creates; Cleanup(BasePrefix) removes
// the leftovers of every dead run.
const BasePrefix = "itl"

// Config describes one lab. The zero value is two preserve-rst peers with
// no delay.
type Config struct {
	// Prefix names everything this lab creates: 1-10 lower-case letters
	// and digits. "" means BasePrefix plus six random hex digits.
	Prefix string
	// A and B are the profile names of peer A and peer B; "" means
	// "preserve-rst".
	A, B string
	// SameNAT puts both peers on A's LAN behind A's gateway (profile A);
	// B is then ignored.
	SameNAT bool
	// Delay is applied to each peer-side link of the delay line (a NAT
	// gateway's WAN side, or a public peer). The path RTT between A and B
	// is 2×Delay.Delay (delayline: RTT(X,Y) = Delay(X) + Delay(Y)).
	Delay delayline.LinkConfig
	// ServerDelay is applied to the server's link: the RTT between a peer
	// and the server is Delay.Delay + ServerDelay.Delay.
	ServerDelay delayline.LinkConfig
	// Custom adds profiles that A and B may name, for experiments.
	Custom []Profile
	// SameSegment puts the gateways on one segment with no router between
	// them: the delay line forwards without touching TTLs. By default it
	// is one router hop (RouterAddr), which decrements TTLs and answers an
	// expired packet with ICMP Time Exceeded, so a low-TTL SYN can open a
	// NAT's mapping and die before the far NAT (tcpso priming).
	SameSegment bool
}

// Host is one machine of the lab: a network namespace.
type Host struct {
	Name    string     // "server", "A", "B", "gateway-A", "gateway-B"
	NS      string     // network namespace; "" if the host does not exist
	Profile string     // the NAT profile in front of a peer
	Addr    netip.Addr // its own address (LAN or internet)
	Public  netip.Addr // its gateway's WAN address, or Addr when public
}

// Address plan. LANs are 10.0.1.0/24 (A, and B with SameNAT) and
// 10.0.2.0/24 (B); the internet is 198.51.100.0/24 (servers) and
// 203.0.113.0/24 (gateways, carrier-grade NATs and public peers). A nested
// profile's home gateway reaches its carrier-grade NAT over 100.64.<n>.0/24
// (RFC 6598 shared address space): gateway .2, carrier NAT .1.
var (
	ServerAddr    = netip.MustParseAddr("198.51.100.10")
	ServerAltAddr = netip.MustParseAddr("198.51.100.11") // RFC 5780-style second address
	// Signal443 and STUN443 are port-443 aliases of the server, for peers
	// behind tcp443-only: the server namespace DNATs Signal443:443 to
	// ServerAddr:8080 and STUN443:443 to ServerAddr:3478.
	Signal443 = netip.MustParseAddr("198.51.100.12")
	STUN443   = netip.MustParseAddr("198.51.100.13")
	// RouterAddr is the delay line's address as a router: the source of
	// its ICMP Time Exceeded messages (unless Config.SameSegment).
	RouterAddr = netip.MustParseAddr("203.0.113.254")
)

// Lab is a running NAT lab.
type Lab struct {
	Prefix             string
	Server             Host
	A, B               Host
	GatewayA, GatewayB Host // NS "" when that peer is public (or B with SameNAT)
	// CarrierA and CarrierB are the carrier-grade NATs in front of the
	// gateways of nested profiles (Profile.Outer); NS "" otherwise.
	CarrierA, CarrierB Host
	// RTT is the emulated A↔B path round trip (0 with SameNAT: a LAN).
	RTT time.Duration
	// ServerRTT is the emulated round trip between a peer and the server.
	ServerRTT time.Duration

	run  *netns.Run
	line *delayline.Line
	nss  []string // namespaces created, in creation order

	closeOnce sync.Once
	closeErr  error

	// mu guards the fields below.
	mu      sync.Mutex
	cmds    []*exec.Cmd
	closed  bool
	stopSig func()
	noise   []*noise // background connections of noisy profiles (Linux)
}

// Command returns a command that runs name inside h's namespace (through
// `ip netns exec`). Close kills it (and its process group) if it is still
// running; the caller still Waits for it.
func (l *Lab) Command(ctx context.Context, h Host, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	setProcAttr(cmd)
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 5 * time.Second
	l.mu.Lock()
	l.cmds = append(l.cmds, cmd)
	l.mu.Unlock()
	return cmd
}

// Stats returns the delay line's counters.
func (l *Lab) Stats() delayline.Stats {
	if l.line == nil {
		return delayline.Stats{}
	}
	return l.line.Stats()
}

// Close kills the processes started through Command and anything else
// running in the lab's namespaces, deletes the namespaces (with their
// interfaces and nftables tables) and stops the delay line (closing its
// TUN devices). It is idempotent and safe to call from a signal handler
// goroutine.
func (l *Lab) Close() error {
	// A second caller (the signal handler while a deferred Close runs)
	// waits for the first to finish: it must not re-raise the signal and
	// end the process halfway through the cleanup.
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Lab) close() error {
	l.mu.Lock()
	l.closed = true
	cmds := l.cmds
	l.cmds = nil
	stop := l.stopSig
	l.mu.Unlock()
	if stop != nil {
		stop()
	}

	var errs []error
	l.stopNoise()
	for _, c := range cmds {
		killGroup(c)
	}
	// Not the caller's context: cleanup must run even when it is done.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(l.nss) - 1; i >= 0; i-- {
		if err := netns.Destroy(ctx, l.nss[i]); err != nil {
			errs = append(errs, fmt.Errorf("natlab: %w", err))
		}
	}
	if l.line != nil {
		if err := l.line.Close(); err != nil {
			errs = append(errs, fmt.Errorf("natlab: %w", err))
		}
	}
	l.run.Release()
	return errors.Join(errs...)
}

// CloseOnSignal closes the lab when the process gets SIGINT or SIGTERM,
// then re-raises the signal with its default action so the process still
// dies of it (exit status and shell behaviour stay right). The returned
// function, also called by Close, uninstalls the handler.
func (l *Lab) CloseOnSignal() (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
		})
	}
	go func() {
		select {
		case sig := <-ch:
			l.Close()
			stop()
			reraise(sig)
		case <-done:
		}
	}()
	l.mu.Lock()
	l.stopSig = stop
	l.mu.Unlock()
	return stop
}

// Cleanup removes what dead earlier runs whose prefix starts with base
// left behind: their namespaces (killing processes inside, which also
// removes their TUNs, veths and nftables tables) and stray interfaces.
// Runs that are still alive, in this or another process, are left alone.
func Cleanup(base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := netns.Cleanup(ctx, base); err != nil {
		return fmt.Errorf("natlab: cleanup %s: %w", base, err)
	}
	return nil
}

// Leftovers lists what Cleanup(base) would remove ("netns NAME",
// "link NAME"); empty after every lab of this process was closed.
func Leftovers(base string) ([]string, error) {
	out, err := netns.Leftovers(base)
	if err != nil {
		return out, fmt.Errorf("natlab: %w", err)
	}
	return out, nil
}
