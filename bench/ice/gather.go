package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/internal/lab/interop"
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
	timingTable(w, fmt.Sprintf("Time to gather (127.0.0.1, %d trials)", cfg.trials), "agent, candidates", cfg.trials, 20*time.Second, []trialRow{
		{"icetcp, host (active, passive, S-O)", icetcpGather(nil)},
		{"icetcp, host + srflx (STUN over TCP, local server)", icetcpGather([]string{l.Addr().String()})},
		{"pion, host (active, passive via TCPMux; gathers from its constructor on)", peerGather(interop.NewPion)},
		{"libnice, host (active, passive)", peerGather(interop.NewLibnice)},
	})
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
