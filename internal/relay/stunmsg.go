package relay

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"time"

	stun "github.com/pion/stun/v4"
)

// What the relay does to the control messages between a client and pion,
// besides framing them (clientconn.go): nonces (nonce.go), the per-
// allocation bookkeeping of permissions, and the owners of CONNECTION-IDs.

// attrConnectionID is RFC 6062 §6.2's CONNECTION-ID.
const attrConnectionID = stun.AttrType(0x002a)

// The message types outbound looks into besides error responses.
var (
	typeCreatePermissionOK = stun.NewType(stun.MethodCreatePermission, stun.ClassSuccessResponse).Value()
	typeConnectOK          = stun.NewType(stun.MethodConnect, stun.ClassSuccessResponse).Value()
	typeConnectionAttempt  = stun.NewType(stun.MethodConnectionAttempt, stun.ClassIndication).Value()
)

// messages are decoded messages for inbound and outbound: their attribute
// lists are reused from one message to the next (each connection's frames
// are read by one goroutine, and none of them outlives its call).
var messages = sync.Pool{New: func() any { return &stun.Message{Attributes: make(stun.Attributes, 0, 12)} }}

func getMessage(raw []byte) *stun.Message {
	m := messages.Get().(*stun.Message)
	m.Raw = raw
	return m
}

func putMessage(m *stun.Message) {
	if cap(m.Attributes) > 32 {
		return
	}
	// Nothing of the message stays reachable from the pool.
	clear(m.Attributes[:cap(m.Attributes)])
	m.Raw, m.Attributes = nil, m.Attributes[:0]
	messages.Put(m)
}

// inbound looks at the frame p[:n] pion is about to read and returns its
// length, which changes when the relay's nonce is swapped for pion's.
func (c *clientConn) inbound(p []byte, n int) int {
	if n < stunHeader || p[0]>>6 != 0 {
		return n // ChannelData: pion has no use for it on TCP allocations
	}
	m := getMessage(p[:n])
	defer putMessage(m)
	if m.Decode() != nil || m.Type.Class != stun.ClassRequest {
		c.method.Store(0)
		return n // pion answers or drops it
	}
	c.method.Store(uint32(m.Type.Method))
	if m.Type.Method == stun.MethodCreatePermission {
		c.notePermissionRequest(m)
	}
	out := c.s.swapNonce(c, m)
	if out == nil || len(out) > len(p) {
		return n
	}
	return copy(p, out)
}

// notePermissionRequest keeps the own relayed addresses a CreatePermission
// names, port included: when pion grants it, the allocation accepts
// connections from exactly those (see relayListener.Accept), not from
// every allocation of this relay.
func (c *clientConn) notePermissionRequest(m *stun.Message) {
	var exact []netip.AddrPort
	var ips []netip.Addr
	for _, a := range m.Attributes {
		if a.Type != stun.AttrXORPeerAddress {
			continue
		}
		var x stun.XORMappedAddress
		if err := x.GetFromAs(&stun.Message{TransactionID: m.TransactionID, Attributes: stun.Attributes{a}}, stun.AttrXORPeerAddress); err != nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(x.IP)
		if !ok {
			continue
		}
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(x.Port))
		ips = append(ips, ap.Addr())
		if ap.Port() != 0 && c.s.isRelayAddr(ap) {
			exact = append(exact, ap)
		}
	}
	c.reqMu.Lock()
	c.permTx, c.permExact, c.permIPs = m.TransactionID, exact, ips
	c.reqMu.Unlock()
}

// nonceTupleFor is what the nonce of m must be bound to: this
// connection, except for a ConnectionBind on a new data connection, whose
// credentials (nonce included) are the control connection's (RFC 6062
// §5.4; coturn checks them against the allocation's session). The answer
// to m is given a nonce for the same tuple.
func (c *clientConn) nonceTupleFor(m *stun.Message) nonceTuple {
	t := c.tuple()
	if m.Type.Method == stun.MethodConnectionBind {
		if v, err := m.Get(attrConnectionID); err == nil && len(v) == 4 {
			if owner := c.s.connIDOwner(binary.BigEndian.Uint32(v)); owner != nil {
				t = owner.tuple()
			}
		}
	}
	c.reqMu.Lock()
	c.bindTuple = t
	c.reqMu.Unlock()
	return t
}

// swapNonce returns m ready for pion when it carries MESSAGE-INTEGRITY and
// a good nonce of the relay's for its tuple: with pion's nonce instead,
// signed again with the user's key if the client's MESSAGE-INTEGRITY
// checked out (the relay checks it itself: it must never sign a request
// the client could not), else left with a MESSAGE-INTEGRITY pion will
// refuse (401). nil leaves m as it is: unauthenticated, or a nonce that is
// not good here (another connection's, a replay, stale, pion's own), which
// pion cannot validate and answers 438 with a new one, which becomes the
// relay's for this tuple on the way out.
func (s *Server) swapNonce(c *clientConn, m *stun.Message) []byte {
	if !m.Contains(stun.AttrMessageIntegrity) {
		return nil
	}
	// The attributes' bytes, not copies: nothing here keeps them.
	nonce, err := m.Get(stun.AttrNonce)
	if err != nil {
		return nil
	}
	t := c.nonceTupleFor(m)
	if err := s.nonces.checkBytes(nonce, t, s.cfg.Now()); err != nil {
		s.stats.staleNonce.Add(1)
		s.log.Debugf("%v: %s: %v", c.remote, m.Type, err)
		return nil
	}
	pn := s.pionNonce.Load()
	user, uerr := m.Get(stun.AttrUsername)
	realm, rerr := m.Get(stun.AttrRealm)
	if pn == nil || uerr != nil || rerr != nil {
		return nil
	}
	_, key, why := s.auth.lookup(string(user), string(realm))
	if why != "" || stun.MessageIntegrity(key).Check(m) != nil {
		key = nil
	}
	out, err := rebuild(m, func(a stun.RawAttribute) stun.RawAttribute {
		if a.Type == stun.AttrNonce {
			a.Value = []byte(*pn)
		}
		return a
	}, key)
	if err != nil {
		return nil
	}
	return out
}

// rebuild returns m's bytes with each attribute through edit, up to
// MESSAGE-INTEGRITY (what follows it is ignored, RFC 8489 §14.5), then
// MESSAGE-INTEGRITY computed with key (the original's value when key is
// nil), then FINGERPRINT if m had one.
func rebuild(m *stun.Message, edit func(stun.RawAttribute) stun.RawAttribute, key []byte) ([]byte, error) {
	// Room for a longer nonce and for the appended attributes: Raw is
	// never grown by copying.
	out := &stun.Message{Type: m.Type, TransactionID: m.TransactionID, Raw: make([]byte, 0, len(m.Raw)+128), Attributes: make(stun.Attributes, 0, len(m.Attributes)+2)}
	out.WriteHeader()
	var fingerprint bool
	var integrity []byte
	for _, a := range m.Attributes {
		switch {
		case a.Type == stun.AttrFingerprint:
			fingerprint = true
		case integrity != nil:
		case a.Type == stun.AttrMessageIntegrity:
			integrity = a.Value
		default:
			a = edit(a)
			out.Add(a.Type, a.Value)
		}
	}
	switch {
	case key != nil:
		if err := stun.MessageIntegrity(key).AddTo(out); err != nil {
			return nil, err
		}
	case integrity != nil:
		out.Add(stun.AttrMessageIntegrity, integrity)
	}
	if fingerprint {
		if err := stun.Fingerprint.AddTo(out); err != nil {
			return nil, err
		}
	}
	return out.Raw, nil
}

// outbound returns what goes to the client for pion's message b: b, or a
// copy with the relay's nonce. It also takes note of what the answer
// settles: a granted CreatePermission, a CONNECTION-ID given out.
func (c *clientConn) outbound(b []byte) []byte {
	if len(b) < stunHeader || b[0]>>6 != 0 {
		return b
	}
	switch t := binary.BigEndian.Uint16(b[:2]); {
	case t&0x0110 == 0x0110, // an error response: it may carry pion's nonce
		t == typeCreatePermissionOK, t == typeConnectOK, t == typeConnectionAttempt:
	default:
		return b // nothing to note or change: not worth decoding
	}
	m := getMessage(b)
	defer putMessage(m)
	if m.Decode() != nil {
		return b
	}
	s := c.s
	switch {
	case m.Type.Class == stun.ClassErrorResponse && m.Contains(stun.AttrNonce) && !m.Contains(stun.AttrMessageIntegrity):
		pn, err := m.Get(stun.AttrNonce)
		if err != nil {
			return b
		}
		// pion makes a new nonce once a minute: kept only when it changed.
		if old := s.pionNonce.Load(); old == nil || *old != string(pn) {
			str := string(pn)
			s.pionNonce.Store(&str)
		}
		c.reqMu.Lock()
		t := c.bindTuple
		c.reqMu.Unlock()
		if !t.client.IsValid() {
			t = c.tuple()
		}
		ours := s.nonces.issue(t, s.cfg.Now())
		out, err := rebuild(m, func(a stun.RawAttribute) stun.RawAttribute {
			if a.Type == stun.AttrNonce {
				a.Value = []byte(ours)
			}
			return a
		}, nil)
		if err != nil {
			// Never pion's nonce to a client: it would be good anywhere.
			return nil
		}
		return out
	case m.Type == stun.NewType(stun.MethodCreatePermission, stun.ClassSuccessResponse):
		c.reqMu.Lock()
		var exact []netip.AddrPort
		if c.permTx == m.TransactionID {
			exact, c.permExact = c.permExact, nil
		}
		c.reqMu.Unlock()
		if r := c.alloc.Load(); r != nil && len(exact) > 0 {
			r.permitExact(exact, s.cfg.Now().Add(permissionLifetime))
		}
	case m.Type == stun.NewType(stun.MethodConnect, stun.ClassSuccessResponse),
		m.Type == stun.NewType(stun.MethodConnectionAttempt, stun.ClassIndication):
		if v, err := m.Get(attrConnectionID); err == nil && len(v) == 4 {
			s.noteConnID(binary.BigEndian.Uint32(v), c)
		}
	}
	return b
}

// cidEntry is who was given a CONNECTION-ID, and until when it can be
// bound (pion closes an unbound peer connection after 30 s).
type cidEntry struct {
	owner   *clientConn
	expires time.Time
}

const cidLifetime = 40 * time.Second

func (s *Server) noteConnID(cid uint32, c *clientConn) {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cids) >= s.cidSweep {
		for k, e := range s.cids {
			if now.After(e.expires) {
				delete(s.cids, k)
			}
		}
		s.cidSweep = max(2*len(s.cids), 64)
	}
	s.cids[cid] = cidEntry{owner: c, expires: now.Add(cidLifetime)}
}

func (s *Server) connIDOwner(cid uint32) *clientConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.cids[cid]
	if !ok || s.cfg.Now().After(e.expires) {
		return nil
	}
	return e.owner
}

// permitting reports whether pion asks its permission handler about ip
// for the CreatePermission it handles now, which counts against the
// allocation's MaxPermissions, rather than for a Connect a lane handles
// meanwhile (the method alone cannot tell: the main reader may have read
// the CreatePermission while the lane's Connect was on its way).
func (c *clientConn) permitting(ip netip.Addr) bool {
	if stun.Method(c.method.Load()) != stun.MethodCreatePermission {
		return false
	}
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	return slices.Contains(c.permIPs, ip)
}
