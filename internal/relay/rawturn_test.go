package relay

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// rawTURN speaks TURN message by message, for what pion's client will not
// send (a Connect without CreatePermission, another realm) and to read the
// exact error codes.
type rawTURN struct {
	t     *testing.T
	conn  net.Conn
	user  string
	pass  string
	realm string // "" → the one the server's 401 names
	nonce stun.Nonce
	key   stun.MessageIntegrity

	skipped []*stun.Message // messages roundTrip passed over (indications)
}

func dialRaw(t *testing.T, addr netip.AddrPort, user, pass string) *rawTURN {
	return &rawTURN{t: t, conn: dialFrom(t, netip.Addr{}, addr), user: user, pass: pass}
}

const (
	attrRequestedTransport = stun.AttrType(0x0019)
	protoTCP               = 6
)

// setterFunc adapts a function to stun.Setter.
type setterFunc func(m *stun.Message) error

func (f setterFunc) AddTo(m *stun.Message) error { return f(m) }

func peerAddr(ap netip.AddrPort) stun.Setter {
	return setterFunc(func(m *stun.Message) error {
		x := stun.XORMappedAddress{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
		return x.AddToAs(m, stun.AttrXORPeerAddress)
	})
}

func connectionID(id uint32) stun.Setter {
	return stun.RawAttribute{Type: attrConnectionID, Value: binary.BigEndian.AppendUint32(nil, id)}
}

var tcpTransport = stun.RawAttribute{Type: attrRequestedTransport, Value: []byte{protoTCP, 0, 0, 0}}

// roundTrip sends a request built from setters and returns the response.
func (r *rawTURN) roundTrip(setters ...stun.Setter) *stun.Message {
	r.t.Helper()
	req, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.conn.Write(req.Raw); err != nil {
		r.t.Fatalf("write %s: %v", req.Type, err)
	}
	for {
		res := r.read()
		if res.TransactionID == req.TransactionID {
			return res
		}
		r.skipped = append(r.skipped, res)
	}
}

// read returns the next message on the connection (responses and
// indications alike).
func (r *rawTURN) read() *stun.Message {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(35 * time.Second))
	defer r.conn.SetReadDeadline(time.Time{})
	head := make([]byte, 20)
	if _, err := io.ReadFull(r.conn, head); err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	raw := append(head, make([]byte, binary.BigEndian.Uint16(head[2:4]))...)
	if _, err := io.ReadFull(r.conn, raw[20:]); err != nil {
		r.t.Fatalf("read response body: %v", err)
	}
	m := &stun.Message{Raw: raw}
	if err := m.Decode(); err != nil {
		r.t.Fatalf("decode response: %v", err)
	}
	return m
}

// request sends an authenticated request (after allocate learned the nonce).
func (r *rawTURN) request(method stun.Method, setters ...stun.Setter) *stun.Message {
	r.t.Helper()
	_, res := r.requestRaw(method, setters...)
	return res
}

// requestRaw is request that also returns the bytes sent: what an
// eavesdropper on a plain turn: connection captures.
func (r *rawTURN) requestRaw(method stun.Method, setters ...stun.Setter) ([]byte, *stun.Message) {
	r.t.Helper()
	raw := r.build(method, setters...)
	return raw, r.send(raw)
}

// build returns an authenticated request, to send later.
func (r *rawTURN) build(method stun.Method, setters ...stun.Setter) []byte {
	r.t.Helper()
	s := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, setters...)
	s = append(s, stun.NewUsername(r.user), stun.NewRealm(r.realm), r.nonce, r.key, stun.Fingerprint)
	req, err := stun.Build(s...)
	if err != nil {
		r.t.Fatal(err)
	}
	return req.Raw
}

// send writes raw, a whole request, and returns the answer to it.
func (r *rawTURN) send(raw []byte) *stun.Message {
	r.t.Helper()
	req := &stun.Message{Raw: append([]byte(nil), raw...)}
	if err := req.Decode(); err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.conn.Write(raw); err != nil {
		r.t.Fatalf("write %s: %v", req.Type, err)
	}
	for {
		res := r.read()
		if res.TransactionID == req.TransactionID {
			return res
		}
		r.skipped = append(r.skipped, res)
	}
}

// challenge runs the 401 round on r's connection: an anonymous Allocate,
// whose answer gives the realm and the nonce (good on this connection only).
func (r *rawTURN) challenge() {
	r.t.Helper()
	res := r.roundTrip(stun.NewType(stun.MethodAllocate, stun.ClassRequest), tcpTransport, stun.Fingerprint)
	if code(res) != 401 {
		r.t.Fatalf("anonymous Allocate answered %v, want 401", res)
	}
	r.learn(res)
}

// learn takes the realm and nonce of a 401 or 438 answer.
func (r *rawTURN) learn(res *stun.Message) {
	r.t.Helper()
	var realm stun.Realm
	if err := r.nonce.GetFrom(res); err != nil {
		r.t.Fatal(err)
	}
	if err := realm.GetFrom(res); err != nil {
		r.t.Fatal(err)
	}
	if r.realm == "" {
		r.realm = realm.String()
	}
	r.key = stun.NewLongTermIntegrity(r.user, r.realm, r.pass)
}

// allocate runs the 401 round and the authenticated Allocate of a TCP
// allocation and returns the final response.
func (r *rawTURN) allocate() *stun.Message {
	r.t.Helper()
	r.challenge()
	return r.request(stun.MethodAllocate, tcpTransport)
}

// mustAllocate allocates and returns the relayed address.
func (r *rawTURN) mustAllocate() netip.AddrPort {
	r.t.Helper()
	res := r.allocate()
	if code(res) != 0 {
		r.t.Fatalf("allocate: %v", res)
	}
	return relayedOf(r.t, res)
}

// another opens a second connection to addr with r's credentials and
// nonce, as a client opens its data connections.
func (r *rawTURN) another(addr netip.AddrPort) *rawTURN {
	return &rawTURN{t: r.t, conn: dialFrom(r.t, netip.Addr{}, addr), user: r.user, pass: r.pass, realm: r.realm, nonce: r.nonce, key: r.key}
}

// code is the response's ERROR-CODE, 0 for a success response.
func code(m *stun.Message) int {
	var ec stun.ErrorCodeAttribute
	if m.Type.Class != stun.ClassErrorResponse || ec.GetFrom(m) != nil {
		return 0
	}
	return int(ec.Code)
}

func relayedOf(t *testing.T, m *stun.Message) netip.AddrPort {
	t.Helper()
	var x stun.XORMappedAddress
	if err := x.GetFromAs(m, stun.AttrXORRelayedAddress); err != nil {
		t.Fatalf("no XOR-RELAYED-ADDRESS in %v: %v", m, err)
	}
	ip, _ := netip.AddrFromSlice(x.IP)
	return netip.AddrPortFrom(ip.Unmap(), uint16(x.Port))
}
