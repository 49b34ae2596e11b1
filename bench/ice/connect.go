package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/internal/lab/interop"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// A connect trial starts when both agents exist (a process peer has
// started and told its credentials; an icetcp agent is about to gather in
// Connect) and ends when both report connected (icetcp: Connect returned;
// libnice READY; pion Connected). Gathering is inside the interval for
// icetcp and libnice; pion starts gathering when it is created, a few
// microseconds of host TCP candidates ahead.
func connectTable(w io.Writer, cfg config) error {
	timingTable(w, fmt.Sprintf("Time to connected (host candidates on 127.0.0.1, %d trials)", cfg.trials), "agents", cfg.trials, 30*time.Second, []trialRow{
		{"icetcp ↔ icetcp", icetcpPair},
		{"pion ↔ pion", peerPair(interop.NewPion)},
		{"libnice ↔ libnice", peerPair(interop.NewLibnice)},
		{"icetcp (controlling) ↔ pion", icetcpVs(interop.NewPion, false)},
		{"icetcp (controlled) ↔ pion", icetcpVs(interop.NewPion, true)},
		{"icetcp (controlling) ↔ libnice", icetcpVs(interop.NewLibnice, false)},
		{"icetcp (controlled) ↔ libnice", icetcpVs(interop.NewLibnice, true)},
	})
	// Toward a standard agent icetcp's first write waits for its answer to
	// the peer's own check on the selected connection (agent/stdpeer.go):
	// this is what the application sees of it.
	timingTable(w, fmt.Sprintf("Time to the first byte at the peer (from Connect to the peer's first read, %d trials)", cfg.trials), "agents", cfg.trials, 30*time.Second, []trialRow{
		{"icetcp (controlling) → pion", icetcpFirstByte(interop.NewPion, false)},
		{"icetcp (controlled) → pion", icetcpFirstByte(interop.NewPion, true)},
		{"icetcp (controlling) → libnice", icetcpFirstByte(interop.NewLibnice, false)},
		{"icetcp (controlled) → libnice", icetcpFirstByte(interop.NewLibnice, true)},
	})
	return nil
}

// icetcpFirstByte times icetcp against a third-party peer from Connect to
// the peer's application reading the byte icetcp wrote as soon as Connect
// returned.
func icetcpFirstByte(np newPeer, peerControlling bool) func(ctx context.Context) (time.Duration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		p, err := startPeer(ctx, np, interop.Options{Controlling: peerControlling})
		if err != nil {
			return 0, err
		}
		defer p.Stop()
		a, err := newAgent(agent.RoleAuto)
		if err != nil {
			return 0, err
		}
		defer a.Close()
		start := time.Now()
		c, err := a.Connect(ctx, p.Channel())
		if err != nil {
			return 0, err
		}
		if _, err := c.Write([]byte{1}); err != nil {
			return 0, err
		}
		if _, err := p.WaitReceived(ctx, 1); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
}

func newAgent(role agent.Role) (*agent.Agent, error) {
	return newAgentWith(role, false)
}

func newAgentWith(role agent.Role, noSession bool) (*agent.Agent, error) {
	return agent.New(agent.Config{Addrs: []netip.Addr{loopback}, Role: role, LoggerFactory: quietLogs(), Session: !noSession})
}

func icetcpPair(ctx context.Context) (time.Duration, error) {
	a, err := newAgent(agent.RoleAuto)
	if err != nil {
		return 0, err
	}
	defer a.Close()
	b, err := newAgent(agent.RoleAuto)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	x, y := signalingtest.Pair()
	defer x.Close()
	defer y.Close()
	start := time.Now()
	errB := make(chan error, 1)
	go func() {
		_, err := b.Connect(ctx, y)
		errB <- err
	}()
	if _, err := a.Connect(ctx, x); err != nil {
		return 0, err
	}
	if err := <-errB; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

type newPeer func(context.Context, interop.Options) (*interop.Peer, error)

// startPeer starts a peer and waits until it runs.
func startPeer(ctx context.Context, np newPeer, opts interop.Options) (*interop.Peer, error) {
	p, err := np(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := p.WaitStarted(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func peerPair(np newPeer) func(ctx context.Context) (time.Duration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		return timePair(ctx, func(ctx context.Context, controlling bool) (*interop.Peer, error) {
			return startPeer(ctx, np, interop.Options{Controlling: controlling})
		})
	}
}

// timePair starts a controlling and a controlled peer, pairs them and
// times them from the exchange of credentials to connected on both sides.
func timePair(ctx context.Context, start func(ctx context.Context, controlling bool) (*interop.Peer, error)) (time.Duration, error) {
	a, err := start(ctx, true)
	if err != nil {
		return 0, err
	}
	defer a.Stop()
	b, err := start(ctx, false)
	if err != nil {
		return 0, err
	}
	defer b.Stop()
	begin := time.Now()
	interop.Pair(a, b)
	if err := a.WaitState(ctx, interop.StateConnected); err != nil {
		return 0, err
	}
	if err := b.WaitState(ctx, interop.StateConnected); err != nil {
		return 0, err
	}
	return time.Since(begin), nil
}

// icetcpVs runs icetcp against a third-party peer; the peer's role is
// explicit and icetcp takes the other from its credentials.
func icetcpVs(np newPeer, peerControlling bool) func(ctx context.Context) (time.Duration, error) {
	return func(ctx context.Context) (time.Duration, error) {
		p, err := startPeer(ctx, np, interop.Options{Controlling: peerControlling})
		if err != nil {
			return 0, err
		}
		defer p.Stop()
		a, err := newAgent(agent.RoleAuto)
		if err != nil {
			return 0, err
		}
		defer a.Close()
		start := time.Now()
		if _, err := a.Connect(ctx, p.Channel()); err != nil {
			return 0, err
		}
		if err := p.WaitState(ctx, interop.StateConnected); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
}
