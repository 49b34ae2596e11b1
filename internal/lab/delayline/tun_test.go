//go:build linux

package delayline

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icetcp/icetcp/internal/lab/natlab/netns"
)

// requireRoot skips tests that need namespaces and TUN devices, except
// under CI=true where not being able to run them is a failure.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("delayline: this test needs root (namespaces, TUN) and CI=true forbids skipping it")
	}
	t.Skip("delayline: needs root for network namespaces and TUN devices; run as root (CI=true makes this a failure)")
}

// tunPair builds two namespaces, "<prefix>-d1" (198.51.100.1) and
// "<prefix>-d2" (203.0.113.1), each with a TUN device joined by a Line.
func tunPair(t testing.TB, l1, l2 LinkConfig) (ns1, ns2 string, line *Line) {
	return tunPairConfig(t, Config{}, l1, l2)
}

func tunPairConfig(t testing.TB, cfg Config, l1, l2 LinkConfig) (ns1, ns2 string, line *Line) {
	requireRoot(t)
	ctx := context.Background()
	run, err := netns.NewRun("itl", "")
	if err != nil {
		t.Fatal(err)
	}
	ns1, ns2 = run.Prefix+"-d1", run.Prefix+"-d2"
	line = New(cfg)
	t.Cleanup(func() {
		line.Close()
		netns.Destroy(ctx, ns1)
		netns.Destroy(ctx, ns2)
		run.Release()
	})
	tun := run.Prefix + "t"
	for _, h := range []struct {
		ns, addr, other string
		lc              LinkConfig
	}{
		{ns1, "198.51.100.1", "203.0.113.0/24", l1},
		{ns2, "203.0.113.1", "198.51.100.0/24", l2},
	} {
		if err := netns.Add(ctx, h.ns); err != nil {
			t.Fatal(err)
		}
		if err := netns.Exec(ctx, "", "ip", "netns", "exec", h.ns, "sysctl", "-qw",
			"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
			t.Fatal(err)
		}
		f, err := netns.OpenTUN(h.ns, tun)
		if err != nil {
			t.Fatal(err)
		}
		if err := line.AddLink(h.ns, f, []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(h.addr), 32)}, h.lc); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"addr", "add", h.addr + "/24", "dev", tun},
			{"link", "set", tun, "up", "txqueuelen", "1000"},
			{"route", "add", h.other, "dev", tun},
		} {
			if err := netns.Exec(ctx, "", "ip", append([]string{"-n", h.ns}, args...)...); err != nil {
				t.Fatal(err)
			}
		}
	}
	line.Start()
	return ns1, ns2, line
}

func listenIn(t testing.TB, ns, addr string) net.Listener {
	var ln net.Listener
	err := netns.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// acceptAndClose completes every handshake on ln and closes the
// connection, until ln is closed: the tests time connects, not data.
func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func dialIn(ns, addr string) (c net.Conn, err error) {
	err = netns.Do(ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	})
	return c, err
}

func TestTUNConnectRTT(t *testing.T) {
	ns1, ns2, _ := tunPair(t, LinkConfig{Delay: 20 * time.Millisecond}, LinkConfig{Delay: 30 * time.Millisecond})
	ln := listenIn(t, ns2, "203.0.113.1:7000")
	go acceptAndClose(ln)
	const want = 50 * time.Millisecond // 20 + 30: see the package doc
	for range 3 {
		start := time.Now()
		c, err := dialIn(ns1, "203.0.113.1:7000")
		if err != nil {
			t.Fatal(err)
		}
		rtt := time.Since(start)
		c.Close()
		t.Logf("TCP connect through the line: %v (configured RTT %v)", rtt, want)
		// Only the lower bound is a property of the line; how much longer
		// a loaded machine takes is not asserted.
		if rtt < want {
			t.Errorf("connect took %v, less than the configured RTT %v", rtt, want)
		}
	}
}

// transfer sends n bytes from ns1 to ns2 over TCP through the line.
func transfer(t testing.TB, ns1, ns2 string, n int64) time.Duration {
	ln := listenIn(t, ns2, "203.0.113.1:7001")
	defer ln.Close() // benchmarks call transfer repeatedly
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		m, _ := io.Copy(io.Discard, c)
		got <- m
	}()
	start := time.Now()
	c, err := dialIn(ns1, "203.0.113.1:7001")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	for sent := int64(0); sent < n; {
		k := min(int64(len(buf)), n-sent)
		if _, err := c.Write(buf[:k]); err != nil {
			t.Fatal(err)
		}
		sent += k
	}
	c.Close()
	select {
	case m := <-got:
		if m != n {
			t.Fatalf("received %d bytes, want %d", m, n)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("transfer did not finish in 60s")
	}
	return time.Since(start)
}

func TestTUNThroughput(t *testing.T) {
	ns1, ns2, line := tunPair(t, LinkConfig{}, LinkConfig{})
	const n = 50 << 20
	d := transfer(t, ns1, ns2, n)
	// transfer checked every byte arrived; speed is BenchmarkTUNTransfer's.
	t.Logf("50 MiB through the line in %v: %.0f MB/s; stats %+v", d, float64(n)/d.Seconds()/1e6, line.Stats())
}

// TestTUNRouterTimeExceeded: with Config.Router the line is a router hop
// that the kernel believes. A SYN with TTL 1 dies there, and the sender's
// kernel matches the ICMP Time Exceeded to its socket: connect fails with
// EHOSTUNREACH instead of waiting. TTL 2 gets through.
func TestTUNRouterTimeExceeded(t *testing.T) {
	ns1, ns2, line := tunPairConfig(t, Config{Router: netip.MustParseAddr("203.0.113.254")}, LinkConfig{}, LinkConfig{})
	ln := listenIn(t, ns2, "203.0.113.1:7002")
	go acceptAndClose(ln)
	dialTTL := func(ttl int) error {
		d := net.Dialer{Timeout: 30 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, ttl) })
			return errors.Join(err, serr)
		}}
		return netns.Do(ns1, func() error {
			c, err := d.Dial("tcp4", "203.0.113.1:7002")
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	if err := dialTTL(1); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("TTL 1: %v, want EHOSTUNREACH from the router's ICMP", err)
	}
	if err := dialTTL(2); err != nil {
		t.Fatalf("TTL 2: %v", err)
	}
	if s := line.Stats(); s.Expired != 1 || s.TimeExceeded != 1 {
		t.Errorf("Expired %d TimeExceeded %d, want 1 1", s.Expired, s.TimeExceeded)
	}
}

func BenchmarkTUNTransfer(b *testing.B) {
	ns1, ns2, _ := tunPair(b, LinkConfig{}, LinkConfig{})
	const n = 50 << 20
	b.SetBytes(n)
	for b.Loop() {
		transfer(b, ns1, ns2, n)
	}
}
