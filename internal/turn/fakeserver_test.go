package turn

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// fakeServer is an in-memory TURN server over net.Pipe for what a real
// server cannot be made to do on demand: grant short lifetimes, answer a
// refresh with 437 or 438, or stop answering. It lives inside a
// testing/synctest bubble (net.Pipe and its goroutines are durably
// blocking there), reached through Config.Dial.
type fakeServer struct {
	t        *testing.T
	lifetime time.Duration
	// refreshAnswer decides the answer to the n-th Refresh (from 1): 0 is
	// success, 437 or 438 an error response, -1 no answer at all.
	refreshAnswer func(n int) int

	mu        sync.Mutex // guards following
	nonce     string
	refreshes []time.Time
	perms     map[netip.Addr][]time.Time // when each IP was (re)installed
	badNonce  int                        // authenticated requests with a stale nonce
	conns     []net.Conn
}

const fakeRealm = "fake.test"

var (
	fakeRelayed = netip.MustParseAddrPort("192.0.2.10:50000")
	fakeMapped  = netip.MustParseAddrPort("198.51.100.7:40000")
)

func newFakeServer(t *testing.T, lifetime time.Duration) *fakeServer {
	return &fakeServer{
		t: t, lifetime: lifetime, nonce: "nonce-1",
		refreshAnswer: func(int) int { return 0 },
		perms:         make(map[netip.Addr][]time.Time),
	}
}

func (s *fakeServer) config() Config {
	return Config{
		Server:   URI{Host: "192.0.2.1", Port: 3478},
		Username: testUser, Password: testPassword,
		Dial:          s.dial,
		LoggerFactory: quietLogs(),
	}
}

func (s *fakeServer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, srv := net.Pipe()
	s.mu.Lock()
	s.conns = append(s.conns, srv)
	s.mu.Unlock()
	go s.serve(srv)
	return c, nil
}

// closeAll closes the server side of every connection, as a server crash.
func (s *fakeServer) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func (s *fakeServer) setNonce(n string) {
	s.mu.Lock()
	s.nonce = n
	s.mu.Unlock()
}

func (s *fakeServer) serve(c net.Conn) {
	defer c.Close()
	key := stun.NewLongTermIntegrity(testUser, fakeRealm, testPassword)
	for {
		m, err := readMessage(c)
		if err != nil {
			return
		}
		var reply []stun.Setter
		if m.Type.Method == stun.MethodBinding {
			reply = []stun.Setter{xorAddr{stun.AttrXORMappedAddress, fakeMapped}}
		} else if code := s.authenticate(m, key); code != 0 {
			s.send(c, m, int(code), nil, nil)
			continue
		}
		switch m.Type.Method {
		case stun.MethodAllocate:
			reply = []stun.Setter{
				xorAddr{stun.AttrXORRelayedAddress, fakeRelayed},
				xorAddr{stun.AttrXORMappedAddress, fakeMapped},
				lifetimeAttr(s.lifetime),
			}
		case stun.MethodRefresh:
			s.mu.Lock()
			s.refreshes = append(s.refreshes, time.Now())
			n := len(s.refreshes)
			s.mu.Unlock()
			if life, err := getLifetime(m); err == nil && life == 0 {
				s.send(c, m, 0, key, []stun.Setter{lifetimeAttr(0)})
				continue
			}
			switch code := s.refreshAnswer(n); code {
			case 0:
				reply = []stun.Setter{lifetimeAttr(s.lifetime)}
			case -1:
				continue
			default:
				s.send(c, m, code, key, nil)
				continue
			}
		case stun.MethodCreatePermission:
			now := time.Now()
			s.mu.Lock()
			for _, ip := range peerIPs(m) {
				s.perms[ip] = append(s.perms[ip], now)
			}
			s.mu.Unlock()
		case stun.MethodBinding:
		default:
			s.send(c, m, 400, key, nil)
			continue
		}
		s.send(c, m, 0, key, reply)
	}
}

// peerIPs decodes every XOR-PEER-ADDRESS of m (pion/stun's GetFromAs
// finds the first only).
func peerIPs(m *stun.Message) []netip.Addr {
	var ips []netip.Addr
	for _, a := range m.Attributes {
		if a.Type != stun.AttrXORPeerAddress {
			continue
		}
		one := &stun.Message{TransactionID: m.TransactionID}
		one.Add(a.Type, a.Value)
		if ap, err := getXORAddr(one, a.Type); err == nil {
			ips = append(ips, ap.Addr())
		}
	}
	return ips
}

// authenticate returns 0 for a request with valid credentials, 401 or 438
// otherwise.
func (s *fakeServer) authenticate(m *stun.Message, key stun.MessageIntegrity) stun.ErrorCode {
	if !m.Contains(stun.AttrMessageIntegrity) || key.Check(m) != nil {
		return stun.CodeUnauthorized
	}
	var n stun.Nonce
	if err := n.GetFrom(m); err != nil {
		return stun.CodeUnauthorized
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.String() != s.nonce {
		s.badNonce++
		return stun.CodeStaleNonce
	}
	return 0
}

func (s *fakeServer) send(c net.Conn, req *stun.Message, code int, key stun.MessageIntegrity, attrs []stun.Setter) {
	class := stun.ClassSuccessResponse
	if code != 0 {
		class = stun.ClassErrorResponse
	}
	setters := []stun.Setter{stun.NewTransactionIDSetter(req.TransactionID), stun.NewType(req.Type.Method, class)}
	setters = append(setters, attrs...)
	if code == int(stun.CodeUnauthorized) || code == int(stun.CodeStaleNonce) {
		s.mu.Lock()
		setters = append(setters, stun.NewRealm(fakeRealm), stun.NewNonce(s.nonce))
		s.mu.Unlock()
	}
	if code != 0 {
		setters = append(setters, stun.ErrorCode(code))
	}
	if key != nil && code != int(stun.CodeUnauthorized) && code != int(stun.CodeStaleNonce) {
		setters = append(setters, key)
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		s.t.Errorf("fake server: build: %v", err)
		return
	}
	c.Write(m.Raw)
}

func (s *fakeServer) refreshTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.refreshes...)
}

func (s *fakeServer) permTimes(ip netip.Addr) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.perms[ip]...)
}
