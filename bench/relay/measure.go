package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	turn "github.com/pion/turn/v5"

	"github.com/icetcp/icetcp/internal/procstat"
)

// tcpAllocation is what the bench uses of pion's *client.TCPAllocation.
type tcpAllocation interface {
	Addr() net.Addr
	Close() error
	Dial(network, addr string) (net.Conn, error)
	Accept() (net.Conn, error)
}

// loadGen makes pion v5 clients; one transport.Net for all of them.
type loadGen struct {
	net transport.Net
	lf  logging.LoggerFactory
}

func newLoadGen() (*loadGen, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	return &loadGen{net: n, lf: lf}, nil
}

type benchClient struct {
	conn  net.Conn
	c     *turn.Client
	alloc tcpAllocation
}

func (g *loadGen) dial(s *server) (*benchClient, error) {
	conn, err := net.DialTimeout("tcp4", s.addr.String(), 10*time.Second)
	if err != nil {
		return nil, err
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: s.addr.String(),
		TURNServerAddr: s.addr.String(),
		Conn:           turn.NewSTUNConn(conn),
		Username:       benchUser,
		Password:       benchPass,
		Net:            g.net,
		LoggerFactory:  g.lf,
	})
	if err == nil {
		err = c.Listen()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &benchClient{conn: conn, c: c}, nil
}

func (b *benchClient) allocate() error {
	a, err := b.c.AllocateTCP()
	if err != nil {
		return err
	}
	b.alloc = a
	return nil
}

func (b *benchClient) close() {
	if b.alloc != nil {
		b.alloc.Close()
	}
	b.c.Close()
	b.conn.Close()
}

// allocateLatency times n Allocate transactions (the 401 challenge and the
// authenticated request), one client after another.
func (g *loadGen) allocateLatency(s *server, n int) (median, p90 time.Duration, err error) {
	var ds []time.Duration
	const warmUp = 10 // a fresh server's first allocations are slower everywhere
	for i := range n + warmUp {
		b, err := g.dial(s)
		if err != nil {
			return 0, 0, err
		}
		start := time.Now()
		err = b.allocate()
		if i >= warmUp {
			ds = append(ds, time.Since(start))
		}
		b.close()
		if err != nil {
			return 0, 0, fmt.Errorf("allocate: %w", err)
		}
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)*9/10], nil
}

// throughput is one bulk transfer's result.
type throughput struct {
	mbps      float64 // 10^6 bytes per second
	cpuPerGiB float64 // server CPU seconds per 2^30 bytes; 0 when not measured
}

const ioBuf = 256 << 10

// send writes size bytes to c; receive reads exactly size bytes. Both use
// the same buffer size for the relayed and the direct run.
func send(c net.Conn, size int64, errc chan<- error) {
	buf := make([]byte, ioBuf)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	var err error
	for left := size; left > 0 && err == nil; {
		var n int
		n, err = c.Write(buf[:min(int64(len(buf)), left)])
		left -= int64(n)
	}
	errc <- err
}

func receive(c net.Conn, size int64) error {
	buf := make([]byte, ioBuf)
	for left := size; left > 0; {
		n, err := c.Read(buf[:min(int64(len(buf)), left)])
		left -= int64(n)
		if err != nil {
			if errors.Is(err, io.EOF) && left == 0 {
				return nil
			}
			return fmt.Errorf("after %d of %d bytes: %w", size-left, size, err)
		}
	}
	return nil
}

// timedTransfer sends size bytes from a to b and measures the time until
// the last byte arrived, and the server's CPU over it (pid 0: none).
func timedTransfer(a, b net.Conn, size int64, pid int) (throughput, error) {
	var cpu0 float64
	if pid != 0 {
		var err error
		if cpu0, err = procstat.CPUSeconds(pid); err != nil {
			return throughput{}, err
		}
	}
	errc := make(chan error, 1)
	start := time.Now()
	go send(a, size, errc)
	if err := receive(b, size); err != nil {
		return throughput{}, err
	}
	elapsed := time.Since(start)
	if err := <-errc; err != nil {
		return throughput{}, err
	}
	r := throughput{mbps: float64(size) / 1e6 / elapsed.Seconds()}
	if pid != 0 {
		cpu1, err := procstat.CPUSeconds(pid)
		if err != nil {
			return throughput{}, err
		}
		r.cpuPerGiB = (cpu1 - cpu0) / (float64(size) / (1 << 30))
	}
	return r, nil
}

// relayed sends size bytes through a Connect/Accept pair: client A connects
// to B's relayed address, so the bytes cross the relay twice (A's data
// connection to B's relayed port, then to B's data connection).
func (g *loadGen) relayed(s *server, size int64) (throughput, error) {
	var cs []*benchClient
	defer func() {
		for _, c := range cs {
			c.close()
		}
	}()
	for range 2 {
		c, err := g.dial(s)
		if err != nil {
			return throughput{}, err
		}
		cs = append(cs, c)
		if err := c.allocate(); err != nil {
			return throughput{}, fmt.Errorf("allocate: %w", err)
		}
	}
	a, b := cs[0], cs[1]
	if err := b.c.CreatePermission(a.alloc.Addr()); err != nil {
		return throughput{}, fmt.Errorf("permission: %w", err)
	}
	accepted := make(chan net.Conn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		c, err := b.alloc.Accept()
		if err != nil {
			acceptErr <- err
			return
		}
		accepted <- c
	}()
	ac, err := a.alloc.Dial("tcp4", b.alloc.Addr().String())
	if err != nil {
		return throughput{}, fmt.Errorf("connect: %w", err)
	}
	defer ac.Close()
	var bc net.Conn
	select {
	case bc = <-accepted:
	case err := <-acceptErr:
		return throughput{}, fmt.Errorf("accept: %w", err)
	case <-time.After(10 * time.Second):
		return throughput{}, errors.New("accept: no ConnectionAttempt within 10s")
	}
	defer bc.Close()
	return timedTransfer(ac, bc, size, s.pid)
}

// oneLeg sends size bytes from one client through its allocation to a
// plain TCP peer (Connect): the relay carries the bytes once.
func (g *loadGen) oneLeg(s *server, size int64) (throughput, error) {
	c, err := g.dial(s)
	if err != nil {
		return throughput{}, err
	}
	defer c.close()
	if err := c.allocate(); err != nil {
		return throughput{}, fmt.Errorf("allocate: %w", err)
	}
	return toPlainPeer(func(addr string) (net.Conn, error) { return c.alloc.Dial("tcp4", addr) }, size, s.pid)
}

// direct is the same transfer over one loopback TCP connection.
func direct(size int64) (throughput, error) {
	return toPlainPeer(func(addr string) (net.Conn, error) { return net.Dial("tcp4", addr) }, size, 0)
}

// toPlainPeer times a transfer from a connection made by dial to a plain
// TCP listener on 127.0.0.1.
func toPlainPeer(dial func(addr string) (net.Conn, error), size int64, pid int) (throughput, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return throughput{}, err
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	out, err := dial(l.Addr().String())
	if err != nil {
		return throughput{}, fmt.Errorf("connect: %w", err)
	}
	defer out.Close()
	peer, ok := <-accepted
	if !ok {
		return throughput{}, errors.New("peer: accept failed")
	}
	defer peer.Close()
	return timedTransfer(out, peer, size, pid)
}

// allocationRate makes total allocations with workers clients at a time,
// each connecting, allocating and leaving; it returns allocations per
// second and the server's CPU per allocation.
func (g *loadGen) allocationRate(s *server, total, workers int) (rate float64, cpuEach time.Duration, err error) {
	cpu0, err := procstat.CPUSeconds(s.pid)
	if err != nil {
		return 0, 0, err
	}
	var left atomic.Int64
	left.Store(int64(total))
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				b, err := g.dial(s)
				if err == nil {
					err = b.allocate()
					b.close()
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, 0, firstErr
	}
	cpu1, err := procstat.CPUSeconds(s.pid)
	if err != nil {
		return 0, 0, err
	}
	cpuEach = time.Duration((cpu1 - cpu0) / float64(total) * float64(time.Second))
	return float64(total) / elapsed.Seconds(), cpuEach, nil
}

// idleRSS holds n idle allocations open and returns the server's RSS growth
// per allocation.
func (g *loadGen) idleRSS(s *server, n, workers int) (float64, error) {
	if err := s.settle(); err != nil {
		return 0, err
	}
	before, err := procstat.RSSKiB(s.pid)
	if err != nil {
		return 0, err
	}
	clients := make([]*benchClient, n)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.close()
			}
		}
	}()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				b, err := g.dial(s)
				if err == nil {
					clients[i] = b
					err = b.allocate()
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	if err := s.settle(); err != nil {
		return 0, err
	}
	after, err := procstat.RSSKiB(s.pid)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(n), nil
}
