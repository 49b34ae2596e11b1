package secure

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/flynn/noise"
)

func TestRecordSealOpen(t *testing.T) {
	tests := []struct {
		typ     recordType
		payload int
		wantErr bool
	}{
		{recData, 0, false},
		{recData, 1, false},
		{recEnd, endLen, false},
		{recReady, 0, false},
		{recData, MaxPayload, false},
		{recData, MaxPayload + 1, true},
	}
	for _, tt := range tests {
		send := noise.UnsafeNewCipherState(cipherSuite, fuzzKey, 0)
		recv := noise.UnsafeNewCipherState(cipherSuite, fuzzKey, 0)
		payload := bytes.Repeat([]byte{0xa5}, tt.payload)
		rec, err := sealRecord(nil, send, tt.typ, payload)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%s of %d bytes sealed", tt.typ, tt.payload)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(rec) > MaxRecordSize || len(rec) != headerLen+typeLen+tt.payload+tagLen {
			t.Fatalf("record of %d bytes for %d of payload", len(rec), tt.payload)
		}
		n, err := bodyLen(rec[:headerLen])
		if err != nil || n != len(rec)-headerLen {
			t.Fatalf("bodyLen %d, %v", n, err)
		}
		typ, got, err := openRecord(recv, rec[headerLen:], 1)
		if err != nil || typ != tt.typ || !bytes.Equal(got, payload) {
			t.Fatalf("open: %s %d bytes %v", typ, len(got), err)
		}
	}
}

func TestRecordHeaderBounds(t *testing.T) {
	for _, tt := range []struct {
		n  int
		ok bool
	}{{0, false}, {minBody - 1, false}, {minBody, true}, {maxBody, true}, {maxBody + 1, false}, {65535, false}} {
		_, err := bodyLen(binary.BigEndian.AppendUint16(nil, uint16(tt.n)))
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrRecord)) {
			t.Errorf("bodyLen(%d) = %v, want ok=%v", tt.n, err, tt.ok)
		}
	}
}

func TestCheckEnd(t *testing.T) {
	if err := checkEnd(endPayload(42), 42); err != nil {
		t.Fatal(err)
	}
	if err := checkEnd(endPayload(42), 41); !errors.Is(err, ErrRecord) || !strings.Contains(err.Error(), "sent 42 bytes, 41 arrived") {
		t.Fatalf("count mismatch: %v", err)
	}
	if err := checkEnd([]byte{1}, 0); !errors.Is(err, ErrRecord) {
		t.Fatalf("short payload: %v", err)
	}
}

func TestReadHandshakeFrame(t *testing.T) {
	msg := []byte("noise message")
	got, err := readHandshake(bytes.NewReader(appendHandshake(nil, msg)))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("round trip: %q %v", got, err)
	}
	big := append([]byte(handshakeMagic), 0xff, 0xff)
	if _, err := readHandshake(bytes.NewReader(big)); !errors.Is(err, ErrHandshake) {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := readHandshake(bytes.NewReader([]byte("icetcp-sec"))); err == nil || errors.Is(err, ErrNotSecure) {
		t.Fatalf("a cut magic is a short read, not a foreign peer: %v", err)
	}
	if _, err := readHandshake(bytes.NewReader([]byte("hello"))); !errors.Is(err, ErrNotSecure) {
		t.Fatalf("foreign bytes: %v", err)
	}
}
