package stuntcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/pion/stun"
)

func TestReadMessage(t *testing.T) {
	good := stun.MustBuild(stun.TransactionID, stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 7), Port: 4242}, stun.NewSoftware("x"), stun.Fingerprint)
	empty := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	mut := func(f func(p []byte)) []byte {
		p := bytes.Clone(good.Raw)
		f(p)
		return p
	}
	tests := []struct {
		name string
		in   []byte
		is   error // nil: success
	}{
		{"response", good.Raw, nil},
		{"header only", empty.Raw, nil},
		{"two back to back (reads the first)", append(bytes.Clone(empty.Raw), good.Raw...), nil},
		{"empty stream", nil, io.EOF},
		{"short header", good.Raw[:10], io.ErrUnexpectedEOF},
		{"short body", good.Raw[:len(good.Raw)-1], io.ErrUnexpectedEOF},
		{"top bits", mut(func(p []byte) { p[0] |= 0x80 }), ErrNotSTUN},
		{"bad cookie", mut(func(p []byte) { p[5] ^= 0xFF }), ErrNotSTUN},
		{"length not mod 4", mut(func(p []byte) { binary.BigEndian.PutUint16(p[2:], 3) }), ErrNotSTUN},
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ErrNotSTUN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m stun.Message
			err := ReadMessage(bytes.NewReader(tt.in), &m)
			if tt.is == nil {
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(m.Raw, tt.in[:len(m.Raw)]) || len(m.Raw) != 20+int(m.Length) {
					t.Fatal("Raw is not the message read")
				}
				return
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
		})
	}
}

func TestReadMessageReusesBuffer(t *testing.T) {
	big := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.NewSoftware(string(make([]byte, 500))))
	small := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
	r := bytes.NewReader(append(bytes.Clone(big.Raw), small.Raw...))
	var m stun.Message
	if err := ReadMessage(r, &m); err != nil {
		t.Fatal(err)
	}
	if err := ReadMessage(r, &m); err != nil {
		t.Fatal(err)
	}
	if m.TransactionID != small.TransactionID || len(m.Attributes) != 0 {
		t.Fatalf("second message decoded wrongly: %v", &m)
	}
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(big.Raw)
		if err := ReadMessage(r, &m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("%v allocations per message with a warm buffer", allocs)
	}
}

func TestReadMessageLimit(t *testing.T) {
	hdr := stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw
	hdr = bytes.Clone(hdr)
	binary.BigEndian.PutUint16(hdr[2:], 65532)
	var m stun.Message
	if err := readMessage(bytes.NewReader(hdr), &m, MaxRequestBody); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	// The public reader accepts the size and then misses the body.
	if err := ReadMessage(bytes.NewReader(hdr), &m); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
}

// FuzzReadMessage checks that ReadMessage never panics, never reads past the
// message it returns, and that what it returns is a message pion/stun
// re-encodes byte for byte.
func FuzzReadMessage(f *testing.F) {
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.ParseIP("2001:db8::1"), Port: 1}, stun.NewSoftware("icetcp"), stun.Fingerprint).Raw)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var m stun.Message
		if err := ReadMessage(r, &m); err != nil {
			return
		}
		consumed := len(in) - r.Len()
		if consumed != len(m.Raw) || !bytes.Equal(m.Raw, in[:consumed]) {
			t.Fatalf("consumed %d bytes, Raw has %d", consumed, len(m.Raw))
		}
		var again stun.Message
		again.Raw = bytes.Clone(m.Raw)
		if err := again.Decode(); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.TransactionID != m.TransactionID || len(again.Attributes) != len(m.Attributes) {
			t.Fatal("re-decode differs")
		}
	})
}
