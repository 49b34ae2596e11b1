//go:build linux

package natlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/icetcp/icetcp/internal/lab/natlab/netns"
	"github.com/icetcp/icetcp/tcpso"
)

// PunchSide configures one side of ProbePunch: what an ICE agent does on
// one S-O candidate, through package tcpso.
type PunchSide struct {
	Host Host
	// Offset moves this side's first SYN away from the common start
	// (negative: earlier), to reproduce imperfect synchronisation.
	Offset time.Duration
	// Punch is the template: Schedule, PrimeTTL, Delay, OnTry. Local,
	// Remote, Start and Listener are filled in.
	Punch tcpso.Punch
	// AutoPrime sets Punch.PrimeTTL from a tcpso.Trace toward the server.
	AutoPrime bool
	// NoListener punches without a listener on the port (by default a
	// shared tcpso.Listener with an accept loop runs there, as an agent's).
	NoListener bool
}

// PunchSideResult is one side's record of ProbePunch.
type PunchSideResult struct {
	Host     string
	Local    netip.AddrPort // the host's address and fixed port
	Mapped   netip.AddrPort // as the server saw it
	PrimeTTL int            // the TTL used (found by Trace with AutoPrime)
	Route    tcpso.Route    // with AutoPrime
	Result   tcpso.Result
	Err      error
	Strays   int // connections the accept loop got that no punch claimed
}

// PunchResult reports ProbePunch.
type PunchResult struct {
	OK    bool // both punches returned the one connection between them, and a token crossed it each way
	Sides [2]PunchSideResult
}

// ProbePunch runs tcpso.Open on both sides at once, the way two agents
// punch between their S-O candidates: each learns its mapping for a fixed
// port from the server (keeping that connection open, as an agent's STUN
// connection), runs a shared listener on the port, and punches to the
// other's mapped address from a common start (plus its Offset).
func (l *Lab) ProbePunch(ctx context.Context, a, b PunchSide, timeout time.Duration) (PunchResult, error) {
	var res PunchResult
	sides := [2]PunchSide{a, b}
	ports := [2]uint16{uint16(20000 + rand.IntN(10000)), uint16(30000 + rand.IntN(10000))}
	for i, s := range sides {
		r := &res.Sides[i]
		r.Host, r.Local = s.Host.Name, netip.AddrPortFrom(s.Host.Addr, ports[i])
		obs, err := l.observe(ctx, s.Host, ports[i], ServerAddr)
		if err != nil {
			return res, fmt.Errorf("natlab: punch: learn %s's mapping: %w", s.Host.Name, err)
		}
		defer obs.conn.Close()
		r.Mapped = obs.addr
		r.PrimeTTL = s.Punch.PrimeTTL
		if s.AutoPrime {
			err := netns.Do(s.Host.NS, func() (err error) {
				r.Route, err = tcpso.Trace(ctx, tcpso.TraceConfig{Target: netip.AddrPortFrom(ServerAddr, 3478), Mapped: obs.addr.Addr()})
				return err
			})
			if err != nil {
				return res, fmt.Errorf("natlab: punch: trace from %s: %w", s.Host.Name, err)
			}
			r.PrimeTTL = r.Route.PrimeTTL
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now().Add(50 * time.Millisecond)
	var wg sync.WaitGroup
	for i, s := range sides {
		r := &res.Sides[i]
		p := s.Punch
		p.Local, p.Remote, p.Start, p.PrimeTTL = r.Local, res.Sides[1-i].Mapped, start.Add(s.Offset), r.PrimeTTL
		if !s.NoListener {
			ln, err := l.sharedListener(s.Host, r.Local)
			if err != nil {
				return res, err
			}
			p.Listener = ln
			stop := acceptStrays(ln, &r.Strays)
			defer stop()
		}
		wg.Go(func() {
			r.Err = netns.Do(s.Host.NS, func() (err error) {
				r.Result, err = tcpso.Open(ctx, p)
				return err
			})
		})
	}
	wg.Wait()
	for _, r := range res.Sides {
		if r.Result.Conn != nil {
			defer r.Result.Conn.Close()
		}
	}
	if res.Sides[0].Err != nil || res.Sides[1].Err != nil {
		return res, nil
	}
	res.OK = exchangeTokens(res.Sides[0].Result.Conn, res.Sides[1].Result.Conn) == nil
	return res, nil
}

func (l *Lab) sharedListener(h Host, at netip.AddrPort) (*tcpso.Listener, error) {
	var ln *tcpso.Listener
	err := netns.Do(h.NS, func() (err error) {
		ln, err = tcpso.ListenConfig{Shared: true}.Listen(context.Background(), at)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natlab: punch: listen in %s: %w", h.NS, err)
	}
	return ln, nil
}

// acceptStrays accepts what no punch claims, counting and closing it, until
// stop closes the listener.
func acceptStrays(ln *tcpso.Listener, n *int) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			*n++
			c.Close()
		}
	}()
	return func() { ln.Close(); <-done }
}

// exchangeTokens proves a and b are the two ends of one connection.
func exchangeTokens(a, b net.Conn) error {
	for i, c := range []net.Conn{a, b} {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte{byte('A' + i)}); err != nil {
			return err
		}
	}
	for i, c := range []net.Conn{a, b} {
		var buf [1]byte
		if _, err := io.ReadFull(c, buf[:]); err != nil {
			return err
		}
		if buf[0] != byte('A'+1-i) {
			return errors.New("natlab: punch: the two ends are not one connection")
		}
	}
	return nil
}
