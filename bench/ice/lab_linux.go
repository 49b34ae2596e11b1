package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/interop"
	"github.com/icetcp/icetcp/internal/lab/natlab"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// labDelay is each peer link's one-way delay in the lab rows.
const labDelay = 20 * time.Millisecond

// labTable measures time to connected through the NAT lab: peer A behind a
// preserve-rst NAT, peer B on the public side, 20 ms one way on each link
// (A–B RTT 40 ms). Agents that cannot punch
// (libnice and pion offer no tcp-so and no TCP server-reflexive
// candidates) connect A's active candidate to B's passive one through the
// NAT, so every row runs on the same path. Needs root.
func labTable(w io.Writer, cfg config) error {
	if os.Geteuid() != 0 {
		return errors.New("-lab needs root (network namespaces, nftables)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	bin, cleanup, err := buildIcetcp(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	lab, err := natlab.New(ctx, natlab.Config{A: "preserve-rst", B: "public", Delay: delayline.LinkConfig{Delay: labDelay}})
	if err != nil {
		return err
	}
	stop := lab.CloseOnSignal()
	defer func() { stop(); lab.Close() }()
	serve, err := startServe(ctx, lab, bin)
	if err != nil {
		return err
	}
	defer func() { serve.Process.Signal(os.Interrupt); serve.Wait() }()

	rtt := 2 * labDelay
	fmt.Fprintf(w, "## Time to connected through the NAT lab (A behind preserve-rst, B public, %v one way per link: A–B RTT %v; %d trials)\n\n", labDelay, rtt, cfg.trials)
	fmt.Fprintln(w, "| agents (A behind the NAT ↔ B public) | median ms | p95 ms | median RTTs | p95 RTTs | failed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	type row struct {
		name    string
		libnice bool
		run     func(context.Context) (time.Duration, error)
	}
	vs := func(kind string, peerControlling bool) func(context.Context) (time.Duration, error) {
		return func(ctx context.Context) (time.Duration, error) {
			return icetcpVsLab(ctx, lab, bin, kind, peerControlling)
		}
	}
	pair := func(kind string) func(context.Context) (time.Duration, error) {
		return func(ctx context.Context) (time.Duration, error) { return peersInLab(ctx, lab, kind) }
	}
	rows := []row{
		{"icetcp ↔ icetcp", false, vs("icetcp", false)},
		{"pion ↔ pion", false, pair("pion")},
		{"libnice ↔ libnice", true, pair("libnice")},
		{"icetcp (controlling) ↔ pion", false, vs("pion", false)},
		{"icetcp (controlled) ↔ pion", false, vs("pion", true)},
		{"icetcp (controlling) ↔ libnice", true, vs("libnice", false)},
		{"icetcp (controlled) ↔ libnice", true, vs("libnice", true)},
	}
	for _, r := range rows {
		if r.libnice {
			if err := interop.LibniceAvailable(); err != nil {
				fmt.Fprintf(w, "| %s | skipped: %v | | | | |\n", r.name, err)
				continue
			}
		}
		var ds []time.Duration
		failed := 0
		var lastErr error
		for range cfg.trials {
			tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
			d, err := r.run(tctx)
			tcancel()
			if err != nil {
				failed++
				lastErr = err
				continue
			}
			ds = append(ds, d)
		}
		if len(ds) == 0 {
			fmt.Fprintf(w, "| %s | failed: %v | | | | %d |\n", r.name, lastErr, failed)
			continue
		}
		st := summarize(ds)
		fmt.Fprintf(w, "| %s | %s | %s | %.1f | %.1f | %d |\n", r.name, ms(st.median), ms(st.p95), float64(st.median)/float64(rtt), float64(st.p95)/float64(rtt), failed)
		if lastErr != nil {
			fmt.Fprintf(os.Stderr, "bench/ice: %s: last failure: %v\n", r.name, lastErr)
		}
	}
	fmt.Fprintln(w)
	return nil
}

// buildIcetcp builds the CLI for the lab's namespaces.
func buildIcetcp(ctx context.Context) (string, func(), error) {
	dir, err := os.MkdirTemp("", "icetcp-bench-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "icetcp")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/icetcp")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("go build ./cmd/icetcp (run from the module root): %w", err)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

var (
	labSignal = netip.AddrPortFrom(natlab.ServerAddr, 8080)
	labSTUN   = netip.AddrPortFrom(natlab.ServerAddr, 3478)
)

// startServe runs the rendezvous and STUN server in the lab's server
// namespace and waits until both accept.
func startServe(ctx context.Context, lab *natlab.Lab, bin string) (*exec.Cmd, error) {
	serve := lab.Command(ctx, lab.Server, bin, "serve", "--signal-addr", labSignal.String(), "--stun-addr", labSTUN.String())
	if err := serve.Start(); err != nil {
		return nil, err
	}
	for _, ap := range []netip.AddrPort{labSignal, labSTUN} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			if r, _ := lab.ProbeTCP(ctx, lab.Server, ap, time.Second); r == natlab.Connected {
				break
			}
			if time.Now().After(deadline) {
				serve.Process.Kill()
				serve.Wait()
				return nil, fmt.Errorf("icetcp serve not accepting on %s", ap)
			}
			time.Sleep(50 * time.Millisecond) // polling an external process
		}
	}
	return serve, nil
}

// newLabPeer starts a third-party peer in host's namespace.
func newLabPeer(ctx context.Context, lab *natlab.Lab, h natlab.Host, kind string, controlling bool) (*interop.Peer, error) {
	opts := interop.Options{Controlling: controlling, Addr: h.Addr, Wrap: func(name string, args ...string) *exec.Cmd {
		return lab.Command(ctx, h, name, args...)
	}}
	np := interop.NewPionProcess
	if kind == "libnice" {
		np = interop.NewLibnice
	}
	return startPeer(ctx, np, opts)
}

// peersInLab pairs two peers of one kind, A (behind the NAT) controlling,
// B (public) controlled.
func peersInLab(ctx context.Context, lab *natlab.Lab, kind string) (time.Duration, error) {
	return timePair(ctx, func(ctx context.Context, controlling bool) (*interop.Peer, error) {
		h := lab.B
		if controlling {
			h = lab.A
		}
		return newLabPeer(ctx, lab, h, kind, controlling)
	})
}

// icetcpVsLab runs `icetcp connect` behind the NAT against B on the public
// side (another `icetcp connect`, or a third-party peer) through the lab's
// rendezvous, and reads the time to connected from its selected event
// (counted from the arrival of the peer's credentials).
func icetcpVsLab(ctx context.Context, lab *natlab.Lab, bin, kind string, peerControlling bool) (time.Duration, error) {
	room := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	url := "ws://" + labSignal.String()
	args := []string{"connect", "--signal", url, "--room", room, "--stun", labSTUN.String(), "--json", "--timeout", "25s"}
	if kind == "icetcp" {
		b := lab.Command(ctx, lab.B, bin, args...)
		b.Stdin = nil // empty stdin: it sends nothing and waits for A
		if err := b.Start(); err != nil {
			return 0, err
		}
		defer func() { b.Process.Kill(); b.Wait() }()
	} else {
		p, err := newLabPeer(ctx, lab, lab.B, kind, peerControlling)
		if err != nil {
			return 0, err
		}
		defer p.Stop()
		d := &wsclient.Dialer{HTTPClient: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				ap, err := netip.ParseAddrPort(addr)
				if err != nil {
					return nil, err
				}
				return lab.Dial(ctx, lab.B, 0, ap)
			},
		}}}
		if err := p.JoinRoom(ctx, d, url, room); err != nil {
			return 0, err
		}
	}
	a := lab.Command(ctx, lab.A, bin, args...)
	stdin, err := a.StdinPipe() // open until A is killed: no half-close decides anything
	if err != nil {
		return 0, err
	}
	defer stdin.Close()
	stderr, err := a.StderrPipe()
	if err != nil {
		return 0, err
	}
	if err := a.Start(); err != nil {
		return 0, err
	}
	defer func() { a.Process.Kill(); a.Wait() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		var e struct {
			Event     string  `json:"event"`
			ConnectMs float64 `json:"connect_ms"`
			Reason    string  `json:"reason"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		switch e.Event {
		case "selected":
			return time.Duration(e.ConnectMs * float64(time.Millisecond)), nil
		case "failed":
			return 0, fmt.Errorf("icetcp connect failed: %s", e.Reason)
		}
	}
	return 0, fmt.Errorf("icetcp connect ended without a selected event: %v", ctx.Err())
}
