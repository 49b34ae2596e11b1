package natcheck

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/tcpso"
)

var (
	ip1 = netip.MustParseAddr("127.0.0.1")
	ip2 = netip.MustParseAddr("127.0.0.2")
)

func quiet() logging.LoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	return lf
}

// serve runs a STUN server on ls until the test ends.
func serve(t *testing.T, s *stuntcp.Server, ls ...net.Listener) {
	t.Helper()
	s.LoggerFactory = quiet()
	done := make(chan error, len(ls))
	for _, l := range ls {
		go func() { done <- s.Serve(l) }()
	}
	t.Cleanup(func() {
		s.Close()
		for range ls {
			<-done
		}
	})
}

// rfc5780Server runs a server on 127.0.0.1 with its alternate on 127.0.0.2.
func rfc5780Server(t *testing.T) (primary, alternate netip.AddrPort) {
	t.Helper()
	ls, p, a, err := stuntcp.ListenRFC5780(netip.AddrPortFrom(ip1, 0), netip.AddrPortFrom(ip2, 0))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, &stuntcp.Server{Primary: p, Alternate: a}, ls...)
	return p, a
}

// plainServer runs a server without an alternate address.
func plainServer(t *testing.T) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, &stuntcp.Server{}, l)
	return netip.MustParseAddrPort(l.Addr().String())
}

func check(t *testing.T, cfg Config) Result {
	t.Helper()
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = quiet()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := Check(ctx, cfg)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	t.Logf("%s in %v; notes %q", r.Class(), r.Elapsed, r.Notes)
	return r
}

// TestCheckLoopback: no NAT between loopback addresses, and a listener on
// our port, so the probe from the alternate address connects.
func TestCheckLoopback(t *testing.T) {
	p, a := rfc5780Server(t)
	var early []Result
	r := check(t, Config{Server: p, Mapped: func(r Result) { early = append(early, r) }})
	if len(early) != 1 || early[0].Mapping != NoNAT || early[0].Allocation != Preserving || early[0].InboundSYN != SYNUnknown {
		t.Fatalf("Mapped saw %+v, want one result with the mapping and allocation, before the probe", early)
	}
	if r.Mapping != NoNAT || !r.PortPreserving || r.Allocation != Preserving || r.InboundSYN != SYNPassed {
		t.Fatalf("result %+v", r)
	}
	if r.Mapped != r.Local || r.Local.Addr() != ip1 {
		t.Fatalf("mapped %v, local %v", r.Mapped, r.Local)
	}
	if r.Server.Other != a || !r.Server.SYNProbe || r.Server.Origin != p || r.Server.Software != "icetcp" {
		t.Fatalf("capabilities %+v", r.Server)
	}
	if got := r.Class().String(); got != "v1 mapping=nonat port=preserve alloc=preserve syn=pass" {
		t.Fatalf("class %q", got)
	}
	// Test I, its probe, and the allocation connections; no NAT, so no
	// test II/III.
	tests := map[string]int{}
	for _, o := range r.Observations {
		if o.Err != "" {
			t.Errorf("observation %+v", o)
		}
		tests[o.Test]++
	}
	if tests["I"] != 1 || tests["probe"] != 1 || tests["alloc"] != allocSamples || len(tests) != 3 {
		t.Fatalf("observations %v", tests)
	}
}

// TestCheckWithoutAlternate: a server without OTHER-ADDRESS. On loopback
// test I alone proves there is no NAT; behind a (here: emulated) NAT the
// mapping stays unknown, and the result says why.
func TestCheckWithoutAlternate(t *testing.T) {
	s := plainServer(t)
	r := check(t, Config{Server: s})
	if r.Mapping != NoNAT || r.Server.Other.IsValid() || !r.Server.SYNProbe || r.InboundSYN != SYNUnknown {
		t.Fatalf("loopback: %+v", r)
	}
	r = check(t, Config{Server: s, Dial: (&fakeNAT{mode: eimRemap}).dial})
	if r.Mapping != MappingUnknown || !hasNote(r, "no OTHER-ADDRESS") {
		t.Fatalf("behind a NAT: %+v", r)
	}
	if r.Class().Mapping != MappingUnknown || !strings.Contains(r.Class().String(), "mapping=unknown") {
		t.Fatalf("class %s", r.Class())
	}
}

func TestCheckUnreachable(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(l.Addr().String())
	l.Close() // nothing listens there now
	_, err = Check(context.Background(), Config{Server: addr, LoggerFactory: quiet()})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), addr.String()) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("err = %v", err)
	}
	// Something that accepts but is no STUN server.
	l, err = net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	_, err = Check(context.Background(), Config{Server: netip.MustParseAddrPort(l.Addr().String()), LoggerFactory: quiet()})
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, stuntcp.ErrNotSTUN) {
		t.Fatalf("non-STUN server: err = %v", err)
	}
}

func TestCheckRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no server":          {},
		"port 0":             {Server: netip.AddrPortFrom(ip1, 0)},
		"unspecified server": {Server: netip.MustParseAddrPort("0.0.0.0:3478")},
		"families differ":    {Server: netip.MustParseAddrPort("127.0.0.1:3478"), Local: netip.MustParseAddrPort("[::1]:0")},
		"NoListen, no port":  {Server: netip.MustParseAddrPort("127.0.0.1:3478"), NoListen: true},
	} {
		if _, err := Check(context.Background(), cfg); err == nil || errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestCheckFromAListeningPort runs the check from a port that already has
// a listener, as an agent's S-O port does. With NoListen the probe's
// connection arrives at that listener.
func TestCheckFromAListeningPort(t *testing.T) {
	p, _ := rfc5780Server(t)
	l, err := tcpso.Listen(context.Background(), netip.AddrPortFrom(ip1, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	from := make(chan netip.Addr, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			select {
			case from <- addrPortOf(c.RemoteAddr()).Addr():
			default:
			}
			c.Close()
		}
	}()
	local := netip.MustParseAddrPort(l.Addr().String())
	r := check(t, Config{Server: p, Local: local, NoListen: true})
	if r.Local != local || r.Mapping != NoNAT || r.InboundSYN != SYNPassed {
		t.Fatalf("%+v", r)
	}
	if got := <-from; got != ip2 {
		t.Fatalf("the caller's listener got a connection from %v, want the server's alternate %v", got, ip2)
	}
	// Again from the same port at once: the first run closed with RST, so
	// no 4-tuple of it is in TIME_WAIT.
	if r := check(t, Config{Server: p, Local: local, NoListen: true}); r.Mapping != NoNAT {
		t.Fatalf("second run: %+v", r)
	}

	// An agent keeps a STUN connection open from its S-O port to the same
	// server: test I's 4-tuple is taken, and Check says so.
	keep, err := tcpso.Dial(context.Background(), local, p)
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	_, err = Check(context.Background(), Config{Server: p, Local: local, NoListen: true, LoggerFactory: quiet()})
	if err == nil || errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.EADDRNOTAVAIL) || !strings.Contains(err.Error(), "already has a connection") {
		t.Fatalf("err = %v", err)
	}
}

// The emulated NATs below translate in the dialer: the connection to the
// server leaves from another local port, and LocalAddr reports the port
// the caller asked for, as a NAT hides its translation. They exercise
// Check's decisions over real sockets; the real NATs are in the lab test.
type natMode int

const (
	eimRemap  natMode = iota // one external port per local port, not the same (like eim-remap)
	symmetric                // a new ephemeral port per connection
)

type fakeNAT struct {
	mode natMode
	mu   sync.Mutex
	ext  map[uint16]uint16 // eimRemap: local port -> external port
}

func (n *fakeNAT) dial(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	out := uint16(0) // symmetric: the kernel picks a new port each time
	if n.mode == eimRemap {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.ext == nil {
			n.ext = make(map[uint16]uint16)
		}
		if n.ext[local.Port()] == 0 {
			// The first connection from a local port fixes its mapping
			// to a free port; later ones share it (SO_REUSEPORT).
			l, err := tcpso.Listen(ctx, netip.AddrPortFrom(ip1, 0))
			if err != nil {
				return nil, err
			}
			n.ext[local.Port()] = uint16(l.Addr().(*net.TCPAddr).Port)
			l.Close()
		}
		out = n.ext[local.Port()]
	}
	c, err := tcpso.Dial(ctx, netip.AddrPortFrom(ip1, out), remote)
	if err != nil {
		return nil, err
	}
	return &translated{TCPConn: c, local: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip1, local.Port()))}, nil
}

// translated is a connection whose LocalAddr is the pre-translation one.
type translated struct {
	*net.TCPConn
	local net.Addr
}

func (t *translated) LocalAddr() net.Addr { return t.local }

func TestCheckEmulatedNATs(t *testing.T) {
	p, _ := rfc5780Server(t)
	t.Run("endpoint-independent remapping", func(t *testing.T) {
		r := check(t, Config{Server: p, Dial: (&fakeNAT{mode: eimRemap}).dial})
		// The server probes the external port, where nothing listens.
		if r.Mapping != EndpointIndependent || r.PortPreserving || r.InboundSYN != SYNRefused {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("symmetric", func(t *testing.T) {
		r := check(t, Config{Server: p, Dial: (&fakeNAT{mode: symmetric}).dial})
		if r.Mapping != AddressAndPortDependent || r.PortPreserving || r.Allocation == Preserving {
			t.Fatalf("%+v", r)
		}
		tests := map[string]int{}
		for _, o := range r.Observations {
			tests[o.Test]++
		}
		if tests["II"] != 1 || tests["III"] != 1 {
			t.Fatalf("observations %v, want tests II and III", tests)
		}
		if v, why := SimultaneousOpenViable(r.Class(), r.Class()); v != Unlikely {
			t.Fatalf("two symmetric NATs: %s %q", v, why)
		}
	})
}

func hasNote(r Result, s string) bool {
	for _, n := range r.Notes {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
