package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/internal/lab/interop"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// A throughput run writes cfg.bytes in writes of one size from one end and
// reads them at the other with a buffer of the same size (pion: a 64 KiB
// buffer, since it returns whole frames), both ends in this process, so
// getrusage(RUSAGE_SELF) counts the CPU of both. Raw TCP is measured the
// same way between the same loopback endpoints right before each path.
type result struct {
	mbps   float64
	cpuGiB float64 // CPU seconds per GiB moved
	err    error
}

func measure(total int64, size, readBuf int, window int64, w io.Writer, r io.Reader) result {
	buf := make([]byte, size)
	done := make(chan error, 1)
	var received atomic.Int64
	readSome := make(chan struct{}, 1) // the reader made progress
	cpu0, t0 := selfCPU(), time.Now()
	go func() {
		for sent := int64(0); sent < total; {
			// An application-level window: the writer stays at most window
			// bytes ahead of the reader (0: no window).
			for window > 0 && sent-received.Load() > window {
				<-readSome
			}
			n := int(min(int64(size), total-sent))
			if _, err := w.Write(buf[:n]); err != nil {
				done <- err
				return
			}
			sent += int64(n)
		}
		done <- nil
	}()
	rb := make([]byte, readBuf)
	var got int64
	progress := make(chan int64, 1)
	readErr := make(chan error, 1)
	go func() {
		for got < total {
			n, err := r.Read(rb)
			got += int64(n)
			received.Store(got)
			select {
			case readSome <- struct{}{}:
			default:
			}
			select {
			case progress <- got:
			default:
			}
			if err != nil {
				readErr <- err
				return
			}
		}
		readErr <- nil
	}()
	// A reader that stops making progress has lost data (pion drops what
	// its application has not read beyond 1 MB, even over TCP).
	stall := time.NewTimer(time.Second)
	defer stall.Stop()
	for {
		select {
		case err := <-readErr:
			el, cpu := time.Since(t0), selfCPU()-cpu0
			if werr := <-done; err == nil {
				err = werr
			}
			if err != nil {
				return result{err: err}
			}
			return result{mbps: float64(total) / el.Seconds() / 1e6, cpuGiB: cpu.Seconds() / (float64(total) / (1 << 30))}
		case <-progress:
			stall.Reset(time.Second)
		case <-stall.C:
			return result{err: fmt.Errorf("reader stalled: data lost")}
		}
	}
}

func rawTCP(total int64, size, readBuf int, window int64) result {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{err: err}
	}
	defer l.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			acc <- nil
			return
		}
		acc <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return result{err: err}
	}
	defer c.Close()
	s := <-acc
	if s == nil {
		return result{err: errors.New("accept failed")}
	}
	defer s.Close()
	return measure(total, size, readBuf, window, c, s)
}

func icetcpConns(ctx context.Context, noSession bool) (a, b *agent.Conn, closeAll func(), err error) {
	x, y := signalingtest.Pair()
	aa, err := newAgentWith(agent.RoleAuto, noSession)
	if err != nil {
		return nil, nil, nil, err
	}
	ab, err := newAgentWith(agent.RoleAuto, noSession)
	if err != nil {
		aa.Close()
		return nil, nil, nil, err
	}
	closeAll = func() { aa.Close(); ab.Close(); x.Close(); y.Close() }
	cb := make(chan *agent.Conn, 1)
	go func() {
		c, _ := ab.Connect(ctx, y)
		cb <- c
	}()
	ca, err := aa.Connect(ctx, x)
	b = <-cb
	if err != nil || b == nil {
		closeAll()
		return nil, nil, nil, fmt.Errorf("icetcp connect: %v", err)
	}
	return ca, b, closeAll, nil
}

func pionConns(ctx context.Context) (a, b io.ReadWriter, closeAll func(), err error) {
	pa, err := interop.NewPion(ctx, interop.Options{Controlling: true, DirectIO: true})
	if err != nil {
		return nil, nil, nil, err
	}
	pb, err := interop.NewPion(ctx, interop.Options{DirectIO: true})
	if err != nil {
		pa.Stop()
		return nil, nil, nil, err
	}
	closeAll = func() { pa.Stop(); pb.Stop() }
	interop.Pair(pa, pb)
	ca, err := pa.PionConn(ctx)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	cb, err := pb.PionConn(ctx)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return ca, cb, closeAll, nil
}

func throughputTable(w io.Writer, cfg config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fmt.Fprintf(w, "## Throughput of the selected connection (%d MiB one way per run; icetcp rows: medians of %d rounds, each against the raw run right before it)\n\n", cfg.bytes>>20, cfg.rounds)
	fmt.Fprintln(w, "| path | write size | read buffer | window | MB/s | CPU s per GiB | vs raw TCP |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	var window int64
	row := func(path string, size, readBuf int, r, raw result) {
		win := "-"
		if window > 0 {
			win = fmt.Sprintf("%d KiB", window>>10)
		}
		if r.err != nil {
			fmt.Fprintf(w, "| %s | %d | %d | %s | failed: %v | | |\n", path, size, readBuf, win, r.err)
			return
		}
		rel := "-"
		if raw.err == nil && raw.mbps > 0 && path != "raw TCP" {
			rel = fmt.Sprintf("%.2f×", r.mbps/raw.mbps)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %s | %.0f | %.2f | %s |\n", path, size, readBuf, win, r.mbps, r.cpuGiB, rel)
	}
	// The Conn with its session layer (Config.Session) and without it
	// (the default), in rounds: raw TCP, the session Conn, raw TCP, the
	// plain Conn, again and again. Each icetcp run is compared with the raw
	// run right before it, and the table gives the medians: on a shared
	// machine one raw run and the next differ by up to 2x, which one pair
	// of runs cannot tell from a difference between the paths.
	a, b, closeIce, err := icetcpConns(ctx, false)
	if err != nil {
		return err
	}
	plain, plainB, closePlain, err := icetcpConns(ctx, true)
	if err != nil {
		closeIce()
		return err
	}
	for _, size := range []int{1 << 10, 8000, 64<<10 - 1, 64 << 10} {
		var raw, sess, noSess rounds
		for range cfg.rounds {
			r := rawTCP(cfg.bytes, size, size, 0)
			raw.add(r, r)
			sess.add(measure(cfg.bytes, size, size, 0, a, b), r)
			r = rawTCP(cfg.bytes, size, size, 0)
			raw.add(r, r)
			noSess.add(measure(cfg.bytes, size, size, 0, plain, plainB), r)
		}
		for _, x := range []struct {
			path string
			r    *rounds
		}{{"raw TCP", &raw}, {"icetcp Conn (session)", &sess}, {"icetcp Conn (no session)", &noSess}} {
			if err := x.r.err; err != nil {
				fmt.Fprintf(w, "| %s | %d | %d | - | failed: %v | | |\n", x.path, size, size, err)
				continue
			}
			rel := "-"
			if x.r != &raw {
				rel = x.r.ratio()
			}
			fmt.Fprintf(w, "| %s | %d | %d | - | %.0f | %.2f | %s |\n", x.path, size, size, median(x.r.mbps), median(x.r.cpu), rel)
		}
	}
	closeIce()
	closePlain()
	// pion/ice v2 drops what its application has not read beyond 1 MB
	// (even over TCP) and the stream is broken from then on: one run
	// without a window shows it; the others, each on a new connection,
	// keep the writer at most 512 KiB ahead of the reader, raw TCP too.
	pion := func(size int, win int64) result {
		pa, pb, closePion, err := pionConns(ctx)
		if err != nil {
			return result{err: err}
		}
		defer closePion()
		return measure(cfg.bytes, size, 64<<10, win, pa, pb)
	}
	row("pion ice.Conn", 8000, 64<<10, pion(8000, 0), result{err: errors.New("-")})
	window = 512 << 10
	for _, size := range []int{1 << 10, 8000} {
		raw := rawTCP(cfg.bytes, size, 64<<10, window)
		row("raw TCP", size, 64<<10, raw, raw)
		row("pion ice.Conn", size, 64<<10, pion(size, window), raw)
	}
	fmt.Fprintln(w)
	return nil
}

// rounds collects the runs of one path: MB/s, CPU per GiB, and the ratio
// to the raw TCP run right before each.
type rounds struct {
	mbps, cpu, ratios []float64
	err               error
}

func (r *rounds) add(x, raw result) {
	switch {
	case x.err != nil:
		r.err = x.err
	case raw.err != nil:
		r.err = fmt.Errorf("raw TCP: %w", raw.err)
	default:
		r.mbps, r.cpu = append(r.mbps, x.mbps), append(r.cpu, x.cpuGiB)
		r.ratios = append(r.ratios, x.mbps/raw.mbps)
	}
}

// ratio is the median of the paired ratios, with their range when there
// are several.
func (r *rounds) ratio() string {
	if len(r.ratios) == 1 {
		return fmt.Sprintf("%.2f×", r.ratios[0])
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", median(r.ratios), slices.Min(r.ratios), slices.Max(r.ratios))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
