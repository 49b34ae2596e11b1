package relay

import (
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/icetcp/icetcp/internal/lab/coturn"
	restcred "github.com/icetcp/icetcp/internal/turn"
)

// The same checks against the embedded relay and a real coturn 4.6, which
// decides what correct is where the RFCs leave room. Where the two differ
// on purpose the tests elsewhere say so: coturn resets both sides on a
// half-close and drops early peer data beyond 64 KiB.
type relayUnderTest struct {
	name string
	addr netip.AddrPort
}

func bothRelays(t *testing.T, cfg Config, ccfg coturn.Config) []relayUnderTest {
	t.Helper()
	ccfg.Realm = DefaultRealm
	ct := coturn.StartT(t, ccfg)
	return []relayUnderTest{{"embedded", startServer(t, cfg).addr}, {"coturn", ct.Addr()}}
}

// duplex sends a and b at once in both directions and checks what
// arrives; no half-close, which coturn does not pass on.
//
// coturn 4.6.1 stalls here now and then: in about one run in five one
// direction stopped after 300-550 KB and never resumed. The cross-checks
// therefore send one direction after the other (oneWayThenBack);
// TestDuplexBulk runs duplex on the embedded relay.
func duplex(t *testing.T, x, y net.Conn, a, b []byte) {
	t.Helper()
	type result struct {
		what string
		n    int
		err  error
	}
	results := make(chan result, 4)
	send := func(what string, c net.Conn, p []byte) {
		n, err := c.Write(p)
		results <- result{what, n, err}
	}
	recv := func(what string, c net.Conn, want []byte) {
		got := make([]byte, len(want))
		n, err := io.ReadFull(c, got)
		if err == nil && sha256.Sum256(got) != sha256.Sum256(want) {
			err = errors.New("bytes differ (SHA-256)")
		}
		results <- result{what, n, err}
	}
	go send("x sends", x, a)
	go send("y sends", y, b)
	go recv("y receives", y, a)
	go recv("x receives", x, b)
	done := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for range 4 {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatalf("%s: %v after %d bytes", r.what, r.err, r.n)
			}
			done[r.what] = true
		case <-timeout:
			x.Close()
			y.Close()
			for range 4 - len(done) {
				r := <-results
				t.Errorf("%s: stuck after %d bytes (%v)", r.what, r.n, r.err)
			}
			t.FailNow()
		}
	}
}

// oneWayThenBack sends a from x to y, then b from y to x.
func oneWayThenBack(t *testing.T, x, y net.Conn, a, b []byte) {
	t.Helper()
	duplex(t, x, y, a, nil)
	duplex(t, x, y, nil, b)
}

func TestCrossCheckRelaying(t *testing.T) {
	checkLeaks(t)
	for _, r := range bothRelays(t, loopbackConfig(), coturn.Config{Users: map[string]string{testUser: testPass}, AllowLoopbackPeers: true}) {
		t.Run(r.name, func(t *testing.T) {
			c := newClient(t, r.addr, clientOpts{})
			c.mustAllocate(t)
			out, peer := c.dialPeer(t)
			oneWayThenBack(t, out, peer, randomBytes(2<<20), randomBytes(2<<20))

			// The Connect permitted 127.0.0.1: a peer from there comes in.
			inPeer, in := c.acceptPeer(t)
			oneWayThenBack(t, inPeer, in, randomBytes(1<<20), randomBytes(1<<20))
		})
	}
}

func TestCrossCheckPermissions(t *testing.T) {
	checkLeaks(t)
	for _, r := range bothRelays(t, loopbackConfig(), coturn.Config{Users: map[string]string{testUser: testPass}, AllowLoopbackPeers: true}) {
		t.Run(r.name, func(t *testing.T) {
			raw := dialRaw(t, r.addr, testUser, testPass)
			relayed := raw.mustAllocate()
			if !refused(t, netip.Addr{}, relayed) {
				t.Fatal("inbound connection without permission not closed")
			}
			// Connect needs no CreatePermission (both servers agree), and it
			// installs none: inbound from that peer is still refused.
			l := peerListener(t, "127.0.0.1")
			accepted := acceptOne(t, l)
			if res := raw.request(stun.MethodConnect, peerAddr(addrOf(l))); code(res) != 0 {
				t.Fatalf("Connect without CreatePermission: %v", res)
			}
			recvConn(t, accepted)
			if !refused(t, netip.Addr{}, relayed) {
				t.Fatal("inbound connection after a Connect (no permission) not closed")
			}
			if res := raw.request(stun.MethodCreatePermission, peerAddr(netip.MustParseAddrPort("127.0.0.1:1"))); code(res) != 0 {
				t.Fatalf("CreatePermission: %v", res)
			}
			dialFrom(t, netip.Addr{}, relayed)
			if ind := raw.read(); ind.Type != stun.NewType(stun.MethodConnectionAttempt, stun.ClassIndication) {
				t.Fatalf("want a ConnectionAttempt, got %v", ind)
			}
		})
	}
}

func TestCrossCheckRefusals(t *testing.T) {
	checkLeaks(t)
	cfg := baseConfig()
	cfg.MaxAllocationsPerUser = 2
	for _, r := range bothRelays(t, cfg, coturn.Config{Users: map[string]string{testUser: testPass}, UserQuota: 2}) {
		t.Run(r.name, func(t *testing.T) {
			if got := turnCode(newClient(t, r.addr, clientOpts{user: testUser, pass: "wrong"}).allocate()); got != 401 {
				t.Errorf("wrong password: %d, want 401", got)
			}
			if got := turnCode(newClient(t, r.addr, clientOpts{user: "nobody", pass: "x"}).allocate()); got != 401 {
				t.Errorf("unknown user: %d, want 401", got)
			}
			raw := dialRaw(t, r.addr, testUser, testPass)
			raw.mustAllocate()
			for _, ip := range []string{"127.0.0.2", "0.0.0.0", "224.0.0.1"} {
				if res := raw.request(stun.MethodCreatePermission, peerAddr(netip.AddrPortFrom(netip.MustParseAddr(ip), 1))); code(res) != 403 {
					t.Errorf("CreatePermission %s: %v, want 403", ip, res)
				}
			}
			newClient(t, r.addr, clientOpts{}).mustAllocate(t)
			if got := turnCode(newClient(t, r.addr, clientOpts{}).allocate()); got != 486 {
				t.Errorf("third allocation of a user with quota 2: %d, want 486", got)
			}
		})
	}
}

func TestCrossCheckREST(t *testing.T) {
	checkLeaks(t)
	const secret = "shared-secret"
	cfg := Config{Secret: secret, LoggerFactory: quietLogs()}
	for _, r := range bothRelays(t, cfg, coturn.Config{Secret: secret}) {
		t.Run(r.name, func(t *testing.T) {
			u, p := restcred.RESTCredentials(secret, "bob", time.Now().Add(time.Hour))
			newClient(t, r.addr, clientOpts{user: u, pass: p}).mustAllocate(t)
			u, p = restcred.RESTCredentials(secret, "bob", time.Now().Add(-time.Minute))
			if got := turnCode(newClient(t, r.addr, clientOpts{user: u, pass: p}).allocate()); got != 401 {
				t.Errorf("expired REST username: %d, want 401", got)
			}
			u, _ = restcred.RESTCredentials(secret, "bob", time.Now().Add(time.Hour))
			if got := turnCode(newClient(t, r.addr, clientOpts{user: u, pass: restcred.RESTPassword("other", u)}).allocate()); got != 401 {
				t.Errorf("REST password of another secret: %d, want 401", got)
			}
		})
	}
}
