package relay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun/v4"

	"github.com/icetcp/icetcp/internal/stuntcp"
	restcred "github.com/icetcp/icetcp/internal/turn"
)

// The attacks of issue 14 on the relay, one test per finding, each
// written as the attack: every one of them failed on the relay before the
// fix (see each test's comment for what it did then).

// heapInUse is the heap after a collection: the relay runs in this process.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func mib(before, after uint64) float64 { return (float64(after) - float64(before)) / (1 << 20) }

// Finding 2: permissions per allocation were unbounded. 2,000
// CreatePermission requests of 120 public peer addresses each, on one
// allocation, were all granted: 240,000 permissions, RSS 14 → 157 MB.
// Now an allocation holds at most MaxPermissions peer IPs; the rest are
// refused with 403, and the permitted ones still refresh.
func TestPermissionFloodIsCapped(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	r.mustAllocate()
	before := heapInUse()
	const requests, perRequest = 2000, 120
	peer := func(n int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{11, byte(n >> 16), byte(n >> 8), byte(n)}), 9)
	}
	granted := 0
	for i := range requests {
		peers := make([]stun.Setter, perRequest)
		for j := range peers {
			peers[j] = peerAddr(peer(i*perRequest + j))
		}
		switch res := r.request(stun.MethodCreatePermission, peers...); code(res) {
		case 0:
			granted += perRequest
		case 403:
		default:
			t.Fatalf("CreatePermission %d answered %v", i, res)
		}
	}
	after := heapInUse()
	t.Logf("%d CreatePermission requests of %d peers: %d peers granted by whole requests; heap in use %+.1f MiB; permission refusals %d",
		requests, perRequest, granted, mib(before, after), ts.Stats().Refused.Permissions)
	if granted != 0 {
		t.Fatalf("%d permissions granted in whole requests, want none: the first request already passes the cap of %d", granted, DefaultMaxPermissions)
	}
	// The allocation holds the first MaxPermissions peers: those refresh,
	// one more does not fit.
	if res := r.request(stun.MethodCreatePermission, peerAddr(peer(0)), peerAddr(peer(DefaultMaxPermissions-1))); code(res) != 0 {
		t.Fatalf("refreshing permitted peers answered %v", res)
	}
	if res := r.request(stun.MethodCreatePermission, peerAddr(peer(DefaultMaxPermissions))); code(res) != 403 {
		t.Fatalf("peer %d answered %v, want 403", DefaultMaxPermissions+1, res)
	}
}

// Finding 3, the header: a 20-byte STUN header made the relay allocate
// the 64 KiB body it announced, before anything was authenticated (20
// sources × 64 connections sending only that: 14 → 114 MB). Now a header
// that announces more than pion can take is refused at once; one that
// announces a message that can be valid waits, holding its size.
func TestOversizedHeaderRefusedAtOnce(t *testing.T) {
	checkLeaks(t)
	cfg := baseConfig()
	cfg.FirstMessageTimeout = time.Minute // as in the attack: the held ones stay
	ts := startServer(t, cfg)
	header := func(body int) []byte {
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:2], stun.NewType(stun.MethodAllocate, stun.ClassRequest).Value())
		binary.BigEndian.PutUint16(h[2:4], uint16(body))
		binary.BigEndian.PutUint32(h[4:8], 0x2112A442) // the magic cookie
		return h
	}
	const sources, perSource = 20, 64
	before := heapInUse()
	var conns []net.Conn
	for i := range sources {
		for range perSource {
			c := dialFrom(t, netip.AddrFrom4([4]byte{127, 0, 1, byte(10 + i)}), ts.addr)
			if _, err := c.Write(header(65532)); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
	}
	for i, c := range conns {
		if !waitClosed(c) {
			t.Fatalf("connection %d announcing a 65,532-byte Allocate is still open", i+1)
		}
	}
	t.Logf("%d connections sent a header announcing 65,532 bytes: all closed, heap in use %+.1f MiB", len(conns), mib(before, heapInUse()))
	if got := ts.Stats().Refused.BadFirstMessage; got != sources*perSource {
		t.Fatalf("bad first messages %d, want %d", got, sources*perSource)
	}
	// The largest message pion can take (a STUN message is a multiple of
	// 4 bytes) is still read and answered.
	r := dialRaw(t, ts.addr, testUser, testPass)
	const largest = maxTURNFrame &^ 3
	pad := stun.RawAttribute{Type: 0x80f0, Value: make([]byte, largest-20-8-4-8)} // comprehension-optional, unknown
	res := r.roundTrip(stun.NewType(stun.MethodAllocate, stun.ClassRequest), tcpTransport, pad, stun.Fingerprint)
	if code(res) != 401 {
		t.Fatalf("a %d-byte Allocate answered %v, want 401", largest, res)
	}
}

// Finding 3, the caps: there was no cap on TURN connections in all. Now
// MaxConns connections are held, the rest reset at accept, whoever sends
// them.
func TestTotalConnectionCap(t *testing.T) {
	checkLeaks(t)
	cfg := baseConfig()
	cfg.MaxConns = 40
	cfg.FirstMessageTimeout = time.Minute
	ts := startServer(t, cfg)
	for i := range cfg.MaxConns {
		dialFrom(t, netip.AddrFrom4([4]byte{127, 0, 2, byte(1 + i%4)}), ts.addr)
	}
	// The accept queue is first in, first out: the next ones are refused,
	// from a new source too.
	waitFor(t, func() bool { return ts.admitted.Open() == cfg.MaxConns })
	for i := range 5 {
		if !refused(t, netip.AddrFrom4([4]byte{127, 0, 2, byte(100 + i)}), ts.addr) {
			t.Fatalf("connection %d over MaxConns not refused", i+1)
		}
	}
	if got := ts.Stats().Refused.MaxConns; got != 5 {
		t.Fatalf("max-conns refusals %d, want 5", got)
	}
}

// Finding 3, the key: the per-source limit counted full IPv6 addresses,
// so one host walked through its /64. Now a /64 is one source.
func TestPerSourceCountsIPv6By64(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := baseConfig()
		cfg.MaxConnsPerSource = 2
		cfg.FirstMessageTimeout = time.Minute
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l := newPipeListener()
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()
		a := closedSignal(l.dial("[2001:db8:1:2::1]:1000"))
		b := closedSignal(l.dial("[2001:db8:1:2::2]:1000"))
		c := closedSignal(l.dial("[2001:db8:1:2:ffff::3]:1000")) // the same /64: over the limit
		d := closedSignal(l.dial("[2001:db8:1:3::1]:1000"))      // the next /64
		synctest.Wait()
		if isDone(a) || isDone(b) || !isDone(c) || isDone(d) {
			t.Fatalf("closed: %v %v %v %v, want only the third (its /64 holds two)", isDone(a), isDone(b), isDone(c), isDone(d))
		}
		if got := s.Stats().Refused.PerSource; got != 1 {
			t.Fatalf("per-source refusals %d, want 1", got)
		}
		s.Close()
		<-served
	})
}

// Finding 4: any user of the relay could reach and jam another user's
// allocation. The victim permitted the relay's IP (agents did, for a peer
// with a relayed candidate on the same relay); another user then Connected
// to the victim's relayed address (ConnectionAttempt delivered), told live
// relayed ports from dead ones by the answer, and filled the 32 slots of
// connections waiting for ConnectionBind, after which the real peer's
// Connect "succeeded" and the victim received nothing. Now another
// allocation of the relay gets in only when the victim permitted its
// relayed address, port included, and is answered like a dead port
// otherwise.
func TestOtherUsersCannotReachAnAllocation(t *testing.T) {
	checkLeaks(t)
	cfg := loopbackConfig()
	cfg.Users["mallory"], cfg.Users["bob"] = "mallory-pw", "bob-pw"
	ts := startServer(t, cfg)
	victim := newClient(t, ts.addr, clientOpts{})
	victim.mustAllocate(t)
	peer := newClient(t, ts.addr, clientOpts{user: "bob", pass: "bob-pw"})
	peer.mustAllocate(t)
	// What agents did: the relay's IP. What they do now: the peer's
	// relayed address, port included.
	for _, a := range []net.Addr{&net.TCPAddr{IP: victim.relayed.Addr().AsSlice()}, net.TCPAddrFromAddrPort(peer.relayed)} {
		if err := victim.CreatePermission(a); err != nil {
			t.Fatalf("CreatePermission %v: %v", a, err)
		}
	}
	accepted := victim.acceptRelayed()

	mallory := dialRaw(t, ts.addr, "mallory", "mallory-pw")
	mallory.mustAllocate()
	dead := peerListener(t, "127.0.0.1")
	deadAddr := netip.AddrPortFrom(victim.relayed.Addr(), addrOf(dead).Port())
	dead.Close() // a port nobody listens on
	for i := range maxPendingPerAllocation + 8 {
		for name, target := range map[string]netip.AddrPort{"the victim's relayed address": victim.relayed, "a dead port": deadAddr} {
			if res := mallory.request(stun.MethodConnect, peerAddr(target)); code(res) != 447 {
				t.Fatalf("mallory's Connect %d to %s answered %v, want 447", i+1, name, res)
			}
		}
	}
	// The real peer gets through, and is the first the victim sees.
	conn, err := peer.alloc.Dial("tcp4", victim.relayed.String())
	if err != nil {
		t.Fatalf("the real peer's Connect: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	got := recvConn(t, accepted)
	if from := got.RemoteAddr().String(); from != peer.relayed.String() {
		t.Fatalf("the victim's first relayed connection is from %s, want its peer %s", from, peer.relayed)
	}
	exchange(t, conn, got, []byte("from the peer"), []byte("from the victim"))
}

// Finding 5: "never connects to its own ports" missed the RFC 5780
// alternate listeners and other services of the host: a Connect to the
// primary port was refused, to P+1, the alternate IP's ports and the
// metrics port it succeeded. Now every listener of the STUN server, and
// every address Config.OwnAddrs names, is refused.
func TestOwnServicesRefusedAsPeers(t *testing.T) {
	checkLeaks(t)
	stunSrv := &stuntcp.Server{LoggerFactory: quietLogs()}
	ls, pa, aa, err := stuntcp.ListenRFC5780(netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("127.0.0.2:0"))
	if err != nil {
		t.Fatal(err)
	}
	stunSrv.Primary, stunSrv.Alternate = pa, aa
	metrics := peerListener(t, "127.0.0.1") // another service of this host, as a metrics port
	go acceptAll(metrics)
	cfg := loopbackConfig()
	cfg.STUN = stunSrv
	cfg.OwnAddrs = []netip.AddrPort{addrOf(metrics)}
	ts := serveOn(t, cfg, ls[0])
	for _, l := range ls[1:] {
		go stunSrv.Serve(l) // ends when the relay closes the STUN server
	}
	waitFor(t, func() bool { return len(stunSrv.ListenAddrs()) == 1+len(ls[1:]) })

	r := dialRaw(t, ts.addr, testUser, testPass)
	r.mustAllocate()
	for name, target := range map[string]netip.AddrPort{
		"P+1 on the primary IP":   addrOf(ls[1]),
		"P on the alternate IP":   addrOf(ls[2]),
		"P+1 on the alternate IP": addrOf(ls[3]),
		"the metrics port":        addrOf(metrics),
	} {
		if res := r.request(stun.MethodConnect, peerAddr(target)); code(res) != 447 {
			t.Errorf("Connect to %s (%s) answered %v, want 447", name, target, res)
		}
	}
	// A loopback peer that is not the relay's own is still reached.
	peer := peerListener(t, "127.0.0.1")
	go acceptAll(peer)
	if res := r.request(stun.MethodConnect, peerAddr(addrOf(peer))); code(res) != 0 {
		t.Fatalf("Connect to a loopback peer answered %v", res)
	}
}

// acceptAll accepts and holds connections until l closes.
func acceptAll(l net.Listener) {
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		held = append(held, c)
	}
}

// Finding 6: authenticated requests could be replayed. An Allocate and a
// CreatePermission captured on one connection and sent byte for byte on
// a new one, without the password, succeeded: pion's nonce was the same
// for everyone, good for an hour and bound to nothing. Now a nonce is good
// only on the connection it was given on, and the replay gets 438.
func TestReplayedRequestsRefused(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, loopbackConfig())
	victim := dialRaw(t, ts.addr, testUser, testPass)
	victim.challenge()
	allocate, res := victim.requestRaw(stun.MethodAllocate, tcpTransport)
	if code(res) != 0 {
		t.Fatalf("Allocate: %v", res)
	}
	permit, res := victim.requestRaw(stun.MethodCreatePermission, peerAddr(netip.MustParseAddrPort("127.0.0.1:9")))
	if code(res) != 0 {
		t.Fatalf("CreatePermission: %v", res)
	}
	eve := dialRaw(t, ts.addr, "", "")
	for name, raw := range map[string][]byte{"Allocate": allocate, "CreatePermission": permit} {
		if res := eve.send(raw); code(res) != 438 {
			t.Fatalf("the captured %s sent again on another connection answered %v, want 438", name, res)
		}
	}
	if st := ts.Stats(); st.Allocations != 1 || st.Refused.StaleNonce != 2 {
		t.Fatalf("stats %+v: want the victim's allocation only and 2 stale nonces", st)
	}
	// Every connection gets its own nonce, and it is the relay's.
	other := dialRaw(t, ts.addr, testUser, testPass)
	other.challenge()
	if victim.nonce.String() == other.nonce.String() || !strings.HasPrefix(other.nonce.String(), noncePrefix) {
		t.Fatalf("nonces %q and %q: want two different nonces of the relay", victim.nonce, other.nonce)
	}
	// The victim's connection goes on with its nonce.
	if res := victim.request(stun.MethodRefresh); code(res) != 0 {
		t.Fatalf("Refresh on the victim's connection: %v", res)
	}
}

// A nonce goes stale after NonceLifetime, as coturn's --stale-nonce: the
// next request gets 438 with a new nonce, which works.
func TestNonceGoesStale(t *testing.T) {
	checkLeaks(t)
	var offset atomic.Int64 // the relay's clock runs ahead of the real one by this
	cfg := baseConfig()
	cfg.NonceLifetime = time.Minute
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	ts := startServer(t, cfg)
	r := dialRaw(t, ts.addr, testUser, testPass)
	r.mustAllocate()
	offset.Store(int64(cfg.NonceLifetime + time.Second))
	res := r.request(stun.MethodRefresh)
	if code(res) != 438 {
		t.Fatalf("Refresh with a nonce %v old answered %v, want 438", cfg.NonceLifetime+time.Second, res)
	}
	r.learn(res)
	if res := r.request(stun.MethodRefresh); code(res) != 0 {
		t.Fatalf("Refresh with the new nonce: %v", res)
	}
}

// Finding 7: quotas that did not bound. A REST username without a user
// part was its own user, so a fresh expiry bought a fresh quota; a REST
// user part equal to a long-term user's name shared (and could exhaust)
// that user's quota. Now user-less REST usernames share one quota, and
// REST users and long-term users never share one.
func TestQuotaUserIDs(t *testing.T) {
	checkLeaks(t)
	now := time.Now()
	cfg := Config{Users: map[string]string{"alice": "alice-pw"}, Secret: "rest-secret", MaxAllocationsPerUser: 2, LoggerFactory: quietLogs()}
	ts := startServer(t, cfg)
	rest := func(user string, i int) clientOpts {
		u, p := restcred.RESTCredentials(cfg.Secret, user, now.Add(time.Duration(i+1)*time.Hour))
		return clientOpts{user: u, pass: p}
	}
	for i := range 3 {
		err := newClient(t, ts.addr, rest("", i)).allocate()
		switch {
		case i < 2 && err != nil:
			t.Fatalf("user-less REST allocation %d: %v", i+1, err)
		case i == 2 && turnCode(err) != 486:
			t.Fatalf("a third user-less REST allocation, with a new expiry, answered %v, want 486", err)
		}
	}
	// REST "alice" fills its own quota...
	for i := range 3 {
		err := newClient(t, ts.addr, rest("alice", i)).allocate()
		if (i < 2) != (err == nil) {
			t.Fatalf("REST alice allocation %d: %v", i+1, err)
		}
	}
	// ...and the long-term alice still has hers.
	for range 2 {
		newClient(t, ts.addr, clientOpts{user: "alice", pass: "alice-pw"}).mustAllocate(t)
	}
}

// The total quota (coturn's --total-quota) bounds all users together.
func TestTotalQuota(t *testing.T) {
	checkLeaks(t)
	cfg := baseConfig()
	cfg.Users["bob"] = "bob-pw"
	cfg.MaxAllocations = 3
	ts := startServer(t, cfg)
	newClient(t, ts.addr, clientOpts{}).mustAllocate(t)
	newClient(t, ts.addr, clientOpts{}).mustAllocate(t)
	newClient(t, ts.addr, clientOpts{user: "bob", pass: "bob-pw"}).mustAllocate(t)
	if err := newClient(t, ts.addr, clientOpts{user: "bob", pass: "bob-pw"}).allocate(); turnCode(err) != 486 {
		t.Fatalf("a fourth allocation, bob's second, answered %v, want 486", err)
	}
	if got := ts.Stats().Refused.TotalQuota; got != 1 {
		t.Fatalf("total-quota refusals %d, want 1", got)
	}
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("condition not met within 10s")
		}
	}
}
