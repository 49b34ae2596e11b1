package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// runInProcess connects n sessions with both agents of each in this
// process and their signaling in memory: the server sides share one Mux,
// the client sides dial it. It counts failed sessions and the connect
// rate only (memory per session would mix both sides). Both agents of a
// session share one of the parallel slots. A process has room for about
// 9,900 sessions under a 20,000 file descriptor limit: each holds two
// connections.
func runInProcess(n, parallel int) (result, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	mux, err := agent.NewMux(l, agent.MuxConfig{MaxPending: 4096, MaxPendingPerSource: 4096, LoggerFactory: quiet()})
	if err != nil {
		return result{}, err
	}
	defer mux.Close()
	var failures atomic.Int64
	var mu sync.Mutex
	var all []*agent.Agent
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		server, err := agent.New(agent.Config{Mux: mux, DisableActive: true, DisableSO: true, Role: agent.RoleControlled,
			ConnectTimeout: time.Minute, LoggerFactory: quiet()})
		if err != nil {
			return result{}, err
		}
		client, err := agent.New(agent.Config{Addrs: []netip.Addr{clientAddr(i)}, DisablePassive: true, DisableSO: true,
			Role: agent.RoleControlling, ConnectTimeout: time.Minute, LoggerFactory: quiet()})
		if err != nil {
			return result{}, err
		}
		mu.Lock()
		all = append(all, server, client)
		mu.Unlock()
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := connectBoth(server, client); err != nil {
				failures.Add(1)
				fmt.Fprintf(os.Stderr, "session %d: %v\n", i, err)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	for _, a := range all {
		a.Close()
	}
	return result{failures: int(failures.Load()), rate: float64(n) / took.Seconds()}, nil
}

// connectBoth connects two agents over an in-memory signaling pair.
func connectBoth(x, y *agent.Agent) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	chX, chY := signalingtest.Pair()
	errs := make(chan error, 2)
	connect := func(a *agent.Agent, ch signaling.Channel, side string) {
		_, err := a.Connect(ctx, ch)
		ch.Close() // as applications do once connected
		if err != nil {
			err = fmt.Errorf("%s: %w", side, err)
		}
		errs <- err
	}
	go connect(x, chX, "server")
	go connect(y, chY, "client")
	return errors.Join(<-errs, <-errs)
}
