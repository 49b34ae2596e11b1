package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/coturn"
	relaysrv "github.com/icetcp/icetcp/internal/relay"
	"github.com/icetcp/icetcp/internal/turn"
)

// Real relays on loopback: the embedded one (internal/relay, pion/turn v5)
// and coturn. Both agents offer only active host candidates, which cannot
// pair with each other, so every pair that can work goes through the relay.

// startRelay runs the embedded relay on addr's IP with one user and a REST
// secret; loopback peers are allowed (everything here is on loopback).
func startRelay(t *testing.T, ip string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("no %s here: %v", ip, err)
	}
	srv, err := relaysrv.New(relaysrv.Config{Users: map[string]string{"alice": "wonderland"}, Secret: "north-wind",
		AllowLoopbackPeers: true, LoggerFactory: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return addrPortOf(l.Addr())
}

func relayConfigs(server netip.AddrPort, creds TURNServer, role Role) Config {
	c := activeOnly(baseConfig(role))
	switch {
	case server.Addr().Is6():
		c.Addrs = []netip.Addr{netip.IPv6Loopback()}
	case role == RoleControlled:
		// Each peer on its own loopback address, the relay on a third: a
		// relay tells peers apart by address (coturn refuses a second
		// Connect to an address it already has a connection to).
		c.Addrs = []netip.Addr{netip.MustParseAddr("127.0.0.3")}
	}
	creds.URI = "turn:" + server.String() + "?transport=tcp"
	c.TURNServers = []TURNServer{creds}
	c.DisableNATCheck = true
	c.CheckTimeout, c.ConnectTimeout = 3*time.Second, 20*time.Second
	return c
}

func TestRelayEmbedded(t *testing.T) {
	for _, tc := range []struct {
		name, ip string
		creds    TURNServer
	}{
		// The relay on an address of its own, the two peers on two more: a
		// relay tells peers apart by address. (IPv6 has one loopback
		// address, so IPv6 allocations are tested in internal/turn.)
		{"long-term", "127.0.0.2", TURNServer{Username: "alice", Password: "wonderland"}},
		{"REST", "127.0.0.2", TURNServer{Username: "bob", Secret: "north-wind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRelay(t, tc.ip)
			x, y := mustConnect(t, relayConfigs(srv, tc.creds, RoleControlling), relayConfigs(srv, tc.creds, RoleControlled))
			for _, c := range []*Conn{x, y} {
				if c.Path() != "relay" {
					t.Fatalf("path %s: %v -> %v", c.Path(), c.Local(), c.Remote())
				}
			}
			exchange(t, x, y, 1<<20)
		})
	}
}

func TestRelayCoturn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   coturn.Config
		creds TURNServer
	}{
		{"long-term", coturn.Config{Users: map[string]string{"alice": "wonderland"}, AllowLoopbackPeers: true},
			TURNServer{Username: "alice", Password: "wonderland"}},
		{"REST", coturn.Config{Secret: "north-wind", AllowLoopbackPeers: true},
			TURNServer{Username: "bob", Secret: "north-wind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.ListenIP = netip.MustParseAddr("127.0.0.2")
			// Session events in coturn's log (printed on failure): one
			// burst stalled for 30 s in a CI run and the default log had
			// nothing to say about it.
			tc.cfg.Extra = append(tc.cfg.Extra, "--verbose")
			c := coturn.StartT(t, tc.cfg)
			x, y := mustConnect(t, relayConfigs(c.Addr(), tc.creds, RoleControlling), relayConfigs(c.Addr(), tc.creds, RoleControlled))
			if x.Path() != "relay" || y.Path() != "relay" {
				t.Fatalf("paths %s/%s", x.Path(), y.Path())
			}
			// coturn drops peer data beyond 64 KiB that arrives before
			// ConnectionBind: a burst right after selection must not
			// depend on that (our data follows the authenticated check,
			// which follows the bind).
			burst := make([]byte, 1<<20)
			for i := range burst {
				burst[i] = byte(i * 7)
			}
			go x.Write(burst)
			got := make([]byte, len(burst))
			if n, err := io.ReadFull(y, got); err != nil {
				t.Fatalf("after %d of %d bytes over %v -> %v (%s): %v", n, len(burst), x.Local(), x.Remote(), x.Path(), err)
			}
			for i := range got {
				if got[i] != burst[i] {
					t.Fatalf("byte %d differs after a burst through coturn", i)
				}
			}
			// One direction at a time: coturn stalls full-duplex bulk
			// transfers for good now and then (internal/turn's package
			// documentation: a lost wakeup in its flow control between
			// the two legs of a relayed connection). This test stalled so
			// once in about 200 runs under load; no change on our side
			// can restart coturn's reading of a leg.
			exchangeInTurn(t, x, y, 256<<10)
		})
	}
}

// exchangeInTurn sends n random bytes from x to y, then n from y to x,
// each followed by the sender's CloseWrite, and compares SHA-256 sums;
// the reverse direction carries only consent checks meanwhile.
func exchangeInTurn(t *testing.T, x, y *Conn, n int) {
	t.Helper()
	for _, dir := range []struct {
		name     string
		from, to *Conn
	}{{"x→y", x, y}, {"y→x", y, x}} {
		data := make([]byte, n)
		rand.Read(data)
		sent := make(chan error, 1)
		go func() {
			_, err := dir.from.Write(data)
			if err == nil {
				err = dir.from.CloseWrite()
			}
			sent <- err
		}()
		got, err := io.ReadAll(dir.to)
		if werr := <-sent; werr != nil {
			t.Fatalf("%s: send: %v", dir.name, werr)
		}
		if err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
			t.Fatalf("%s: received %d of %d bytes (%v), intact: %v", dir.name, len(got), n, err, bytes.Equal(got, data))
		}
	}
}

// Faults of the relay are warnings: wrong credentials, an unreachable
// server, an exhausted quota. The direct path (loopback here) still wins.
func TestRelayFaultsLeaveDirect(t *testing.T) {
	srv := startRelay(t, "127.0.0.1")
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		name  string
		turn  TURNServer
		match error
	}{
		{"wrong password", TURNServer{URI: "turn:" + srv.String(), Username: "alice", Password: "guess"}, turn.ErrUnauthorized},
		{"unreachable", TURNServer{URI: "turn:" + closedAddr, Username: "alice", Password: "wonderland"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := directDespiteRelay(t, tc.turn)
			if tc.match != nil && !errors.Is(err, tc.match) {
				t.Fatalf("warning %v, want one matching %v", err, tc.match)
			}
		})
	}
}

// directDespiteRelay connects two agents on loopback, the controlling one
// with ts as its relay, checks that the direct path won and carries data,
// and returns the first warning the agent gave (failing without one).
func directDespiteRelay(t *testing.T, ts TURNServer) error {
	t.Helper()
	warned := make(chan error, 8)
	ca := baseConfig(RoleControlling)
	ca.TURNServers, ca.DisableNATCheck = []TURNServer{ts}, true
	ca.OnEvent = func(e Event) {
		if e.Type == EventWarning {
			warned <- e.Err
		}
	}
	x, y := mustConnect(t, ca, baseConfig(RoleControlled))
	if x.Path() != "direct" {
		t.Fatalf("path %s", x.Path())
	}
	exchange(t, x, y, 4096)
	select {
	case err := <-warned:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no warning about the relay")
		return nil
	}
}

// directToRelayOnly is the host's network where only the relay can be
// reached: every direct path is dead.
type directToRelayOnly struct {
	Network
	relay netip.Addr
}

func (d directToRelayOnly) Dial(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	if remote.Addr() != d.relay {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return d.Network.Dial(ctx, local, remote)
}

// The relay refuses to connect to a peer in its own loopback range (it is
// not an open relay): the relayed pair fails with an error that says so,
// and with no other path the agent fails naming it.
func TestRelayRefusesPeerAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relaysrv.New(relaysrv.Config{Users: map[string]string{"alice": "wonderland"}, LoggerFactory: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	relayAddr := addrPortOf(l.Addr())
	ca := activeOnly(baseConfig(RoleControlling))
	ca.TURNServers = []TURNServer{{URI: "turn:" + relayAddr.String(), Username: "alice", Password: "wonderland"}}
	ca.Network = directToRelayOnly{&hostNetwork{}, relayAddr.Addr()}
	ca.DisableNATCheck = true
	cb := passiveOnly(baseConfig(RoleControlled))
	cb.Addrs = []netip.Addr{netip.MustParseAddr("127.0.0.3")}
	ca.CheckTimeout, cb.CheckTimeout = time.Second, time.Second
	_, _, errA, _ := connectPair(t, ca, cb, nil, nil)
	if !isFailed(errA) || !errors.Is(errA, turn.ErrForbidden) {
		t.Fatalf("want a failure naming the refused peer (turn.ErrForbidden), got %v", errA)
	}
}

// The user's allocation quota is reached: a warning naming it, and the
// direct path connects.
func TestRelayQuotaLeavesDirect(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relaysrv.New(relaysrv.Config{Users: map[string]string{"alice": "wonderland"}, MaxAllocationsPerUser: 1,
		AllowLoopbackPeers: true, LoggerFactory: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	uri := "turn:" + l.Addr().String()
	parsed, _ := turn.ParseURI(uri)
	held, err := turn.Allocate(context.Background(), turn.Config{Server: parsed, Username: "alice", Password: "wonderland", LoggerFactory: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := directDespiteRelay(t, TURNServer{URI: uri, Username: "alice", Password: "wonderland"}); !errors.Is(err, turn.ErrQuota) {
		t.Fatalf("warning %v, want turn.ErrQuota", err)
	}
}
