package turn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func TestReadMessage(t *testing.T) {
	good := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodConnect, stun.ClassSuccessResponse),
		connectionIDAttr(0xdeadbeef), lifetimeAttr(600*time.Second),
		xorAddr{stun.AttrXORPeerAddress, netip.MustParseAddrPort("[2001:db8::7]:4242")},
		stun.Fingerprint).Raw
	after := []byte("peer bytes")
	r := bytes.NewReader(append(append([]byte{}, good...), after...))
	m, err := readMessage(r)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := getConnectionID(m); err != nil || id != 0xdeadbeef {
		t.Errorf("CONNECTION-ID %#x, %v", id, err)
	}
	if life, err := getLifetime(m); err != nil || life != 600*time.Second {
		t.Errorf("LIFETIME %v, %v", life, err)
	}
	if ap, err := getXORAddr(m, stun.AttrXORPeerAddress); err != nil || ap != netip.MustParseAddrPort("[2001:db8::7]:4242") {
		t.Errorf("XOR-PEER-ADDRESS %v, %v", ap, err)
	}
	if rest, _ := io.ReadAll(r); !bytes.Equal(rest, after) {
		t.Errorf("readMessage consumed what follows the message: %q left", rest)
	}

	bad := func(edit func(b []byte) []byte) []byte { return edit(append([]byte{}, good...)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"short header", good[:7], io.ErrUnexpectedEOF},
		{"short body", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"top bits (ChannelData)", bad(func(b []byte) []byte { b[0] |= 0x40; return b }), errNotSTUN},
		{"magic cookie", bad(func(b []byte) []byte { b[4] ^= 1; return b }), errNotSTUN},
		{"length not a multiple of 4", bad(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 6); return b[:26] }), errNotSTUN},
		{"attribute overruns the body", bad(func(b []byte) []byte { binary.BigEndian.PutUint16(b[22:], 0xff00); return b }), errNotSTUN},
	} {
		_, err := readMessage(bytes.NewReader(tc.in))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzReadMessage: no input panics the reader or the attribute getters,
// and a message read consumes exactly its own bytes.
func FuzzReadMessage(f *testing.F) {
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodConnectionAttempt, stun.ClassIndication),
		connectionIDAttr(7), xorAddr{stun.AttrXORPeerAddress, netip.MustParseAddrPort("192.0.2.1:80")}).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse),
		stun.CodeStaleNonce, stun.NewRealm("r"), stun.NewNonce("n")).Raw)
	f.Add([]byte{0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0x0d, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		m, err := readMessage(r)
		if err != nil {
			return
		}
		if used := len(b) - r.Len(); used != len(m.Raw) || !bytes.Equal(m.Raw, b[:used]) {
			t.Fatalf("consumed %d bytes for a %d-byte message", used, len(m.Raw))
		}
		for _, at := range []stun.AttrType{stun.AttrXORPeerAddress, stun.AttrXORRelayedAddress, stun.AttrXORMappedAddress} {
			getXORAddr(m, at)
		}
		getLifetime(m)
		getConnectionID(m)
		errorCode(m)
		peerIPs(m)
	})
}
