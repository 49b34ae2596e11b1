package natlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/icetcp/icetcp/internal/lab/child"
)

// Relay names the TURN relay (RFC 6062 TCP allocations) a matrix runs in
// the server namespace.
type Relay string

const (
	// RelayEmbedded is `icetcp serve`'s own relay on its STUN port, with
	// an RFC 5780 alternate address so the agents measure their NAT
	// classes. The zero value means it.
	RelayEmbedded Relay = "embedded"
	// RelayCoturn is coturn (turnserver) on ServerAddr:3478; `icetcp
	// serve` then runs the rendezvous only, and coturn answers STUN too.
	RelayCoturn Relay = "coturn"
	// RelayOff gives connect no --turn: no relayed candidates (serve's
	// relay still runs, on a secret nobody is told).
	RelayOff Relay = "off"
)

// ParseRelay reads a --relay value.
// labUserQuota is the embedded relay's allocations per user in the lab:
// every trial of a run uses the one user "lab", as a deployment with one
// shared long-term user does (README: raise the quota to the sessions
// served at once). With the default 10, a relay that a busy host had
// not yet let reap the allocations of the trials just ended refused two
// new peers (486) in CI, and a trial whose punch met the RST × silent-NAT
// clash had no relay to fall back to.
const labUserQuota = "1000"

func ParseRelay(s string) (Relay, error) {
	switch r := Relay(s); r {
	case "", RelayEmbedded:
		return RelayEmbedded, nil
	case RelayCoturn, RelayOff:
		return r, nil
	}
	return "", fmt.Errorf("natlab: unknown relay %q (have embedded, coturn, off)", s)
}

func (r Relay) orDefault() Relay {
	if r == "" {
		return RelayEmbedded
	}
	return r
}

// Ports the lab's servers listen on at ServerAddr. Signal443 and STUN443
// are DNAT'ed to the first two in the server namespace.
const (
	signalPort = 8080
	stunPort   = 3478
)

// turnUser is the lab relay's long-term user; its password is made up per
// cell.
const turnUser = "lab"

// servers is what runs in a cell's server namespace.
type servers struct {
	serve    *proc
	stopTURN func()        // coturn, when it runs
	turnLog  func() string // coturn's output so far
	relay    Relay
	turnPass string
	px       *proxyCell // TLS and proxies of a cell with a ProxyOnly peer
}

func (s *servers) stop() {
	s.px.stop()
	if s.stopTURN != nil {
		s.stopTURN()
	}
	if s.serve != nil {
		s.serve.stop()
	}
}

// log is what the servers printed so far.
func (s *servers) log() string {
	var b strings.Builder
	if s.serve != nil {
		b.WriteString(s.serve.out.String())
	}
	if s.turnLog != nil {
		b.WriteString("\n--- coturn ---\n")
		b.WriteString(s.turnLog())
	}
	b.WriteString(s.px.log())
	return b.String()
}

// startServers starts the rendezvous, STUN and the relay mc asks for, and
// waits until every port accepts connections; a tcp443-only peer also
// checks the port-443 aliases it will use (their DNAT applies to traffic
// arriving from outside only, so only a peer can test it).
func (l *Lab) startServers(ctx context.Context, mc MatrixConfig) (_ *servers, err error) {
	s := &servers{relay: mc.Relay.orDefault()}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	var pass [12]byte
	rand.Read(pass[:])
	s.turnPass = hex.EncodeToString(pass[:])

	sig, stun := netip.AddrPortFrom(ServerAddr, signalPort), netip.AddrPortFrom(ServerAddr, stunPort)
	args := []string{"serve", "--signal-addr", sig.String()}
	switch s.relay {
	case RelayEmbedded:
		args = append(args, "--stun-addr", stun.String(), "--stun-alt-addr", ServerAltAddr.String(),
			"--relay-ip", ServerAddr.String(), "--turn-user", turnUser, "--turn-pass", s.turnPass,
			"--turn-user-quota", labUserQuota)
	case RelayCoturn:
		args = append(args, "--stun-addr", "")
		if s.stopTURN, s.turnLog, err = l.startCoturn(ctx, stun, s.turnPass); err != nil {
			return nil, err
		}
	case RelayOff:
		args = append(args, "--stun-addr", stun.String(), "--stun-alt-addr", ServerAltAddr.String())
	default:
		return nil, fmt.Errorf("unknown relay %q", mc.Relay)
	}
	if s.px, err = l.startProxyCell(ctx, mc.Proxies, s.relay); err != nil {
		return nil, err
	}
	args = append(args, s.px.serveArgs()...)
	if s.serve, err = l.startProc(ctx, mc.Env, mc.Binary, args...); err != nil {
		return nil, err
	}
	for _, ap := range []netip.AddrPort{sig, stun} {
		if err := l.waitAccepting(ctx, s.serve, l.Server, ap); err != nil {
			return nil, err
		}
	}
	for _, h := range []Host{l.A, l.B} {
		if p, _ := ProfileByName(h.Profile); p.TCP443Only {
			for _, ap := range []netip.AddrPort{netip.AddrPortFrom(Signal443, 443), netip.AddrPortFrom(STUN443, 443)} {
				if err := l.waitAccepting(ctx, s.serve, h, ap); err != nil {
					return nil, err
				}
			}
		}
	}
	return s, nil
}

// startProc starts a long-running command in the server namespace, with
// env added to this process's environment.
func (l *Lab) startProc(ctx context.Context, env []string, bin string, args ...string) (*proc, error) {
	cmd := l.Command(ctx, l.Server, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{name: bin + " " + args[0], cmd: cmd, out: &child.Output{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	return p, nil
}

// waitAccepting polls ap from host h until it accepts a connection; p
// exiting first is an error that carries its output.
func (l *Lab) waitAccepting(ctx context.Context, p *proc, h Host, ap netip.AddrPort) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r, _ := l.ProbeTCP(ctx, h, ap, time.Second); r == Connected {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before %s accepted from %s: %s", p.name, ap, h.Name, p.out.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not accepting from %s after 15s: %s", p.name, ap, h.Name, p.out.String())
		}
	}
}

// connectArgs are the server-side flags of `icetcp connect` behind h: the
// rendezvous, STUN and TURN addresses (the port-443 aliases behind
// tcp443-only) and the TURN user. The password travels in the
// environment, as a user would pass it.
func (s *servers) connectArgs(h Host) (args, env []string) {
	if s.px != nil {
		args, env, _ = s.px.connectArgs(s, h)
		return args, env
	}
	sig := netip.AddrPortFrom(ServerAddr, signalPort)
	stun := netip.AddrPortFrom(ServerAddr, stunPort)
	if p, _ := ProfileByName(h.Profile); p.TCP443Only {
		sig, stun = netip.AddrPortFrom(Signal443, 443), netip.AddrPortFrom(STUN443, 443)
	}
	args = []string{"--signal", "ws://" + sig.String(), "--stun", stun.String()}
	if s.relay != RelayOff {
		args = append(args, "--turn", "turn:"+stun.String()+"?transport=tcp", "--turn-user", turnUser)
		env = append(env, "ICETCP_TURN_PASS="+s.turnPass)
	}
	return args, env
}

// proc is a background process of the lab.
type proc struct {
	name   string // for errors
	cmd    *exec.Cmd
	out    *child.Output
	exited chan struct{} // closed when Wait returned
}

func (p *proc) stop() {
	select {
	case <-p.exited:
		return // reaped: its pid may be another process's now
	default:
	}
	killGroup(p.cmd)
	<-p.exited
}
