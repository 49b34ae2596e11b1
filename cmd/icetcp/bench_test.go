package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/secure"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// BenchmarkServeMemoryPerHeldConnection measures what one joined, idle
// rendezvous connection costs an `icetcp serve` process: its resident set
// before and after 2,000 clients each join a room of their own and hold it
// (answering pings). Run with -benchtime 1x.
func BenchmarkServeMemoryPerHeldConnection(b *testing.B) {
	const n = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := icetcp(ctx, "serve", "--signal-addr", "127.0.0.1:0", "--stun-addr", "", "--metrics-addr", "127.0.0.1:0",
		"--max-conns-per-source", "10000", "--max-rooms-per-source", "10000")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	buf := make([]byte, 512)
	k, _ := stderr.Read(buf)
	url := strings.TrimSuffix(strings.Fields(strings.SplitN(string(buf[:k]), "signaling on ", 2)[1])[0], ",")
	go io.Copy(io.Discard, stderr)
	for b.Loop() {
		before := rss(b, cmd.Process.Pid)
		var clients []*wsclient.Client
		for i := range n {
			c, err := wsclient.Dial(ctx, url, fmt.Sprintf("held-%d", i))
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, c)
		}
		after := rss(b, cmd.Process.Pid)
		b.ReportMetric(float64(after-before)/n, "B/conn")
		b.ReportMetric(float64(after)/(1<<20), "MiB-rss")
		for _, c := range clients {
			c.Close()
		}
	}
}

// rss reads a process's resident set size in bytes (Linux).
func rss(b *testing.B, pid int) int64 {
	b.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// BenchmarkAgentThroughput compares the selected agent Conn with the
// secure layer over it, on loopback, 64 KiB writes in one direction.
func BenchmarkAgentThroughput(b *testing.B) {
	for _, mode := range []string{"plain", "secure"} {
		b.Run(mode, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			srv, err := startServer("127.0.0.1:0", "", io.Discard, defaultServeOptions())
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			secret := secure.NewSecret()
			type res struct {
				c   halfConn
				err error
			}
			out := make(chan res, 2)
			for range 2 {
				go func() {
					c, err := demoPeer(ctx, srv.signalURL(), secret)
					if err != nil || mode == "plain" {
						out <- res{c, err}
						return
					}
					sc, _, err := secureConn(ctx, c, secret)
					out <- res{sc, err}
				}()
			}
			x, y := <-out, <-out
			if x.err != nil || y.err != nil {
				b.Fatal(x.err, y.err)
			}
			defer x.c.Close()
			defer y.c.Close()
			done := make(chan error, 1)
			go func() { _, err := io.Copy(io.Discard, y.c); done <- err }()
			chunk := make([]byte, 64<<10)
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				if _, err := x.c.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			if err := x.c.CloseWrite(); err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

var _ halfConn = (*agent.Conn)(nil)
