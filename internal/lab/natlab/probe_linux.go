//go:build linux

package natlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icetcp/icetcp/internal/lab/natlab/netns"
)

// Probes run in this process: a socket is created on an OS thread that has
// joined the host's namespace (netns.Do), and stays in that namespace for
// its whole life, so accepts, reads and writes can happen on any goroutine
// afterwards. That avoids helper processes and output parsing; the price is
// that every socket must be created inside a netns.Do call.

// Listen opens a TCP listener at addr inside h's namespace.
func (l *Lab) Listen(h Host, addr string) (net.Listener, error) {
	var ln net.Listener
	err := netns.Do(h.NS, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natlab: listen %s in %s: %w", addr, h.NS, err)
	}
	return ln, nil
}

// ListenUDP opens a UDP socket at addr inside h's namespace.
func (l *Lab) ListenUDP(h Host, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := netns.Do(h.NS, func() (err error) {
		pc, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natlab: listen udp %s in %s: %w", addr, h.NS, err)
	}
	return pc, nil
}

// Dial connects from h to remote over TCP. A non-zero localPort binds that
// port with SO_REUSEADDR and SO_REUSEPORT, as an ICE-TCP agent does, so
// several connections (and a retry loop) can share it.
func (l *Lab) Dial(ctx context.Context, h Host, localPort uint16, remote netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{}
	if localPort != 0 {
		d.LocalAddr = &net.TCPAddr{Port: int(localPort)}
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = errors.Join(
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
					unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1))
			})
			return errors.Join(err, serr)
		}
	}
	var c net.Conn
	err := netns.Do(h.NS, func() (err error) {
		// The socket is created on this (namespaced) thread; the
		// goroutine stays locked to it while connect blocks.
		c, err = d.DialContext(ctx, "tcp4", remote.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("natlab: dial %s from %s port %d: %w", remote, h.NS, localPort, err)
	}
	return c, nil
}

// ProbeTCP tries one TCP connection from h to remote and classifies it.
func (l *Lab) ProbeTCP(ctx context.Context, h Host, remote netip.AddrPort, timeout time.Duration) (Reach, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := l.Dial(ctx, h, 0, remote)
	if err == nil {
		c.Close()
		return Connected, nil
	}
	return classify(err), err
}

// Mapping is what two observers on the server (different address and
// port, RFC 5780 style) saw as the source of connections from one local
// port.
type Mapping struct {
	Local    netip.AddrPort   // the prober's own address and port
	Observed []netip.AddrPort // as seen by ServerAddr, then ServerAltAddr
}

// PortPreserving reports whether every observed port equals the local port.
func (m Mapping) PortPreserving() bool {
	for _, o := range m.Observed {
		if o.Port() != m.Local.Port() {
			return false
		}
	}
	return len(m.Observed) > 0
}

// EndpointIndependent reports whether both observers saw the same source.
func (m Mapping) EndpointIndependent() bool {
	for _, o := range m.Observed {
		if o != m.Observed[0] {
			return false
		}
	}
	return len(m.Observed) > 0
}

func (m Mapping) String() string {
	return fmt.Sprintf("%s → %v", m.Local, m.Observed)
}

// ProbeMapping connects from h's port srcPort to observers on ServerAddr
// and ServerAltAddr (different ports too), keeping the first connection
// open while making the second as an ICE agent would, and returns the
// source addresses they saw.
func (l *Lab) ProbeMapping(ctx context.Context, h Host, srcPort uint16) (Mapping, error) {
	m := Mapping{Local: netip.AddrPortFrom(h.Addr, srcPort)}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, addr := range []netip.Addr{ServerAddr, ServerAltAddr} {
		obs, err := l.observe(ctx, h, srcPort, addr)
		if err != nil {
			return m, err
		}
		m.Observed = append(m.Observed, obs.addr)
		conns = append(conns, obs.conn)
	}
	return m, nil
}

type observation struct {
	addr netip.AddrPort
	conn net.Conn
}

// observe runs a one-shot observer at addr:<ephemeral> in the server
// namespace that writes the peer address it sees, and connects to it from
// h's port srcPort. The returned connection is still open.
func (l *Lab) observe(ctx context.Context, h Host, srcPort uint16, addr netip.Addr) (observation, error) {
	ln, err := l.Listen(l.Server, netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		return observation{}, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "%s\n", c.RemoteAddr())
		// Keep it open until the prober closes, so the mapping stays.
		c.Read(make([]byte, 1))
	}()
	dst := netip.MustParseAddrPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := l.Dial(ctx, h, srcPort, dst)
	if err != nil {
		return observation{}, err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return observation{}, fmt.Errorf("natlab: observer %s: %w", dst, err)
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		c.Close()
		return observation{}, fmt.Errorf("natlab: observer %s: %w", dst, err)
	}
	return observation{addr: ap, conn: c}, nil
}

// ProbeUDP sends a few datagrams from h to a fresh UDP socket at
// to:<ephemeral> in the server namespace and reports whether any arrived.
func (l *Lab) ProbeUDP(ctx context.Context, h Host, to netip.Addr, timeout time.Duration) (bool, error) {
	srv, err := l.ListenUDP(l.Server, netip.AddrPortFrom(to, 0).String())
	if err != nil {
		return false, err
	}
	defer srv.Close()
	cl, err := l.ListenUDP(h, ":0")
	if err != nil {
		return false, err
	}
	defer cl.Close()
	dst := srv.LocalAddr()
	go func() {
		for range 5 {
			if _, err := cl.WriteTo([]byte("natlab"), dst); err != nil {
				return
			}
			time.Sleep(timeout / 10)
		}
	}()
	srv.SetReadDeadline(time.Now().Add(timeout))
	_, _, err = srv.ReadFrom(make([]byte, 64))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, syscall.ETIMEDOUT) || isTimeout(err) {
		return false, nil
	}
	return false, fmt.Errorf("natlab: udp probe: %w", err)
}

// MeasureConnect times one TCP handshake from h to remote (someone must
// listen there): about one round trip.
func (l *Lab) MeasureConnect(ctx context.Context, h Host, remote netip.AddrPort) (time.Duration, error) {
	start := time.Now()
	c, err := l.Dial(ctx, h, 0, remote)
	if err != nil {
		return 0, err
	}
	d := time.Since(start)
	c.Close()
	return d, nil
}
