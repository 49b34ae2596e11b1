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
	"syscall"
	"time"

	"github.com/icetcp/icetcp/internal/wait"
)

// SimOpenSide is one side's record of a simultaneous-open probe.
type SimOpenSide struct {
	Host      string
	Local     uint16         // the fixed local port
	Mapped    netip.AddrPort // its mapping as the server saw it
	Attempts  int            // connect() calls
	Refused   int            // attempts answered with RST
	TimedOut  int            // attempts that met silence
	Connected bool
	Err       string // last error
}

// SimOpenResult reports a TCP simultaneous-open probe.
type SimOpenResult struct {
	OK      bool // both sides connected to each other and exchanged a token
	Elapsed time.Duration
	Sides   [2]SimOpenSide
}

// attemptTimeout bounds one connect(): longer than a lab round trip, and
// shorter than the kernel's first SYN retransmission (1 s), so a silently
// dropped SYN is replaced by a fresh attempt rather than waited for.
const attemptTimeout = 800 * time.Millisecond

// ProbeSimOpen makes a and b open one TCP connection to each other the way
// RFC 6544 S-O candidates do: each learns its mapping for a fixed local
// port from the server, then both connect() from that port to the other's
// mapped address, with SO_REUSEADDR/SO_REUSEPORT, retrying after a refusal
// or a silent attempt, until both succeed or timeout passes. The first
// attempts usually meet the far gateway's RST (or silence); once both
// SYNs have left their NATs the connection forms.
func (l *Lab) ProbeSimOpen(ctx context.Context, a, b Host, timeout time.Duration) (SimOpenResult, error) {
	var res SimOpenResult
	ports := [2]uint16{uint16(40000 + rand.IntN(10000)), uint16(50000 + rand.IntN(10000))}
	hosts := [2]Host{a, b}
	for i, h := range hosts {
		res.Sides[i] = SimOpenSide{Host: h.Name, Local: ports[i]}
		obs, err := l.observe(ctx, h, ports[i], ServerAddr)
		if err != nil {
			return res, fmt.Errorf("natlab: simultaneous open: learn %s's mapping: %w", h.Name, err)
		}
		// Keep the connection to the server open: it keeps the mapping
		// alive, as an agent's STUN connection does.
		defer obs.conn.Close()
		res.Sides[i].Mapped = obs.addr
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	type out struct {
		i int
		c net.Conn
	}
	done := make(chan out, 2)
	for i := range 2 {
		go func() {
			c := l.simOpenSide(ctx, hosts[i], ports[i], res.Sides[1-i].Mapped, &res.Sides[i])
			done <- out{i, c}
		}()
	}
	var conns [2]net.Conn
	for range 2 {
		o := <-done
		conns[o.i] = o.c
	}
	res.Elapsed = time.Since(start)
	for _, c := range conns {
		if c != nil {
			defer c.Close()
		}
	}
	if conns[0] == nil || conns[1] == nil {
		return res, nil
	}
	// Prove it is one connection between the two: each writes its name
	// and reads the other's.
	for i, c := range conns {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte{byte('A' + i)}); err != nil {
			res.Sides[i].Err = err.Error()
			return res, nil
		}
	}
	for i, c := range conns {
		var buf [1]byte
		if _, err := io.ReadFull(c, buf[:]); err != nil || buf[0] != byte('A'+1-i) {
			res.Sides[i].Err = fmt.Sprintf("token exchange: got %q, %v", buf[:], err)
			return res, nil
		}
	}
	res.OK = true
	return res, nil
}

// simOpenSide retries connect() from port to remote until it succeeds or
// ctx ends, recording every attempt in s.
func (l *Lab) simOpenSide(ctx context.Context, h Host, port uint16, remote netip.AddrPort, s *SimOpenSide) net.Conn {
	for ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		s.Attempts++
		c, err := l.Dial(actx, h, port, remote)
		cancel()
		if err == nil {
			s.Connected = true
			return c
		}
		s.Err = err.Error()
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			s.Refused++
			// A short pause: the other side's SYN needs to leave its NAT.
			_ = wait.Sleep(ctx, 20*time.Millisecond)
		case classify(err) == TimedOut:
			s.TimedOut++
		default:
			// EADDRNOTAVAIL and friends while the previous socket on
			// this port winds down.
			_ = wait.Sleep(ctx, 20*time.Millisecond)
		}
	}
	return nil
}
