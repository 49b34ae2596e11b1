package relay

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// benchRelay is a relay without listeners, for what the relay does to one
// message on its way to pion or back.
func benchRelay(b *testing.B) *Server {
	b.Helper()
	s, err := New(Config{Users: map[string]string{testUser: testPass}, LoggerFactory: quietLogs()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkInboundAllocate: the relay's work on an authenticated Allocate
// before pion reads it: decode, the nonce checked for the connection, the
// user's key, MESSAGE-INTEGRITY checked, the message rebuilt with pion's
// nonce and signed again.
func BenchmarkInboundAllocate(b *testing.B) {
	s := benchRelay(b)
	c := newClientConn(s, nil, netip.MustParseAddrPort("127.0.0.1:40000"), nil)
	c.local = netip.MustParseAddrPort("127.0.0.1:3478")
	pion := "pion-nonce-0123456789abcdef"
	s.pionNonce.Store(&pion)
	nonce := s.nonces.issue(c.tuple(), time.Now())
	key := stun.NewLongTermIntegrity(testUser, DefaultRealm, testPass)
	req, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), tcpTransport,
		stun.NewUsername(testUser), stun.NewRealm(DefaultRealm), stun.NewNonce(nonce), key, stun.Fingerprint)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, maxTURNFrame)
	b.ReportAllocs()
	for b.Loop() {
		n := copy(buf, req.Raw)
		if c.inbound(buf, n) == n && string(buf[:n]) == string(req.Raw) {
			b.Fatal("the nonce was not swapped")
		}
	}
}

// BenchmarkOutbound401: the relay's work on pion's 401 answer: the nonce
// swapped for one of the relay's, bound to the connection.
func BenchmarkOutbound401(b *testing.B) {
	s := benchRelay(b)
	c := newClientConn(s, nil, netip.MustParseAddrPort("127.0.0.1:40000"), nil)
	c.local = netip.MustParseAddrPort("127.0.0.1:3478")
	res, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
		stun.CodeUnauthorized, stun.NewRealm(DefaultRealm), stun.NewNonce("pion-nonce-0123456789abcdef"), stun.Fingerprint)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if out := c.outbound(res.Raw); len(out) == len(res.Raw) {
			b.Fatal("the nonce was not swapped")
		}
	}
}
