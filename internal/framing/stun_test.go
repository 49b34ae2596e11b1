package framing

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/pion/stun"
)

func TestIsSTUNRealMessages(t *testing.T) {
	msgs := map[string]*stun.Message{
		"binding request": stun.MustBuild(stun.TransactionID, stun.BindingRequest),
		"request with fingerprint": stun.MustBuild(stun.TransactionID, stun.BindingRequest,
			stun.NewUsername("a:b"), stun.NewShortTermIntegrity("pw"), stun.Fingerprint),
		"success response": stun.MustBuild(stun.TransactionID, stun.BindingSuccess,
			&stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 1), Port: 4000}, stun.NewSoftware("icetcp"), stun.Fingerprint),
		"error response": stun.MustBuild(stun.TransactionID, stun.BindingError, stun.CodeRoleConflict),
		"indication":     stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication)),
	}
	for name, m := range msgs {
		if !IsSTUN(m.Raw) {
			t.Errorf("%s: IsSTUN = false", name)
		}
		// A message that lost or gained bytes no longer matches its length.
		if IsSTUN(m.Raw[:len(m.Raw)-1]) {
			t.Errorf("%s truncated: IsSTUN = true", name)
		}
		if IsSTUN(append(m.Raw[:len(m.Raw):len(m.Raw)], 0, 0, 0, 0)) {
			t.Errorf("%s extended: IsSTUN = true", name)
		}
	}
}

func TestIsSTUNRejects(t *testing.T) {
	valid := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw
	mut := func(f func(p []byte)) []byte {
		p := append([]byte(nil), valid...)
		f(p)
		return p
	}
	tests := map[string][]byte{
		"nil":             nil,
		"19 bytes":        valid[:19],
		"top bit":         mut(func(p []byte) { p[0] |= 0x80 }),
		"second top bit":  mut(func(p []byte) { p[0] |= 0x40 }),
		"bad cookie":      mut(func(p []byte) { p[4] ^= 1 }),
		"length not mod4": mut(func(p []byte) { binary.BigEndian.PutUint16(p[2:], uint16(len(p)-20-1)) }),
		"RTP-ish":         {0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"TLS record":      append([]byte{0x16, 3, 1, 0, 16}, make([]byte, 16)...),
		"HTTP":            []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n"),
	}
	for name, p := range tests {
		if IsSTUN(p) {
			t.Errorf("%s: IsSTUN = true", name)
		}
	}
}

func TestIsSTUNRandomData(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 100000 {
		p := make([]byte, 20+4*rng.IntN(32))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		if IsSTUN(p) {
			t.Fatalf("random buffer %d classified as STUN: %x", i, p)
		}
	}
}
