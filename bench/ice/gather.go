package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/internal/interop"
	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// Gathering ends when the agent says so: icetcp's end-of-candidates
// message, pion's nil candidate, libnice's candidate-gathering-done (timed
// from the credentials it prints when its agent exists).
func gatherTable(w io.Writer, cfg config) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	stun := &stuntcp.Server{}
	go stun.Serve(l)
	defer stun.Close()
	rows := []struct {
		name string
		run  func(ctx context.Context) (time.Duration, error)
	}{
		{"icetcp, host (active, passive, S-O)", icetcpGather(nil)},
		{"icetcp, host + srflx (STUN over TCP, local server)", icetcpGather([]string{l.Addr().String()})},
		{"pion, host (active, passive via TCPMux)", peerGather(interop.NewPion)},
		{"libnice, host (active, passive)", peerGather(interop.NewLibnice)},
	}
	fmt.Fprintf(w, "## Time to gather (127.0.0.1, %d trials)\n\n", cfg.trials)
	fmt.Fprintln(w, "| agent, candidates | median ms | p95 ms | failed |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, r := range rows {
		var ds []time.Duration
		failed := 0
		var lastErr error
		for range cfg.trials {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			d, err := r.run(ctx)
			cancel()
			if err != nil {
				failed, lastErr = failed+1, err
				continue
			}
			ds = append(ds, d)
		}
		note := fmt.Sprint(failed)
		if lastErr != nil {
			note += fmt.Sprintf(" (%v)", lastErr)
		}
		s := summarize(ds)
		if s.n == 0 {
			fmt.Fprintf(w, "| %s | - | - | %s |\n", r.name, note)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.name, ms(s.median), ms(s.p95), note)
	}
	fmt.Fprintln(w)
	return nil
}

func icetcpGather(stunServers []string) func(ctx context.Context) (time.Duration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		a, err := agent.New(agent.Config{Addrs: []netip.Addr{loopback}, STUNServers: stunServers, LoggerFactory: quietLogs()})
		if err != nil {
			return 0, err
		}
		defer a.Close()
		x, y := signalingtest.Pair()
		defer x.Close()
		defer y.Close()
		start := time.Now()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go a.Connect(cctx, x)
		for {
			m, err := y.Recv(ctx)
			if err != nil {
				return 0, err
			}
			if m.Type == signaling.TypeEndOfCandidates {
				return time.Since(start), nil
			}
		}
	}
}

func peerGather(np newPeer) func(ctx context.Context) (time.Duration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		p, err := np(ctx, interop.Options{})
		if err != nil {
			return 0, err
		}
		defer p.Stop()
		if err := p.WaitStarted(ctx); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := p.WaitGathered(ctx); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
}
