package trustproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/pires/go-proxyproto"
)

// v2 is a PROXY v2 header from go-proxyproto's own writer (what HAProxy
// and the cloud load balancers send).
func v2(t testing.TB, src, dst string) []byte {
	t.Helper()
	s, _ := net.ResolveTCPAddr("tcp", src)
	d, _ := net.ResolveTCPAddr("tcp", dst)
	b, err := proxyproto.HeaderProxyFromAddrs(2, s, d).Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadHeader(t *testing.T) {
	stun := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, tc := range []struct {
		name    string
		in      []byte
		ok      bool
		taken   int
		src     string
		local   bool
		wantErr bool
	}{
		{"IPv4 header, then STUN", append(v2(t, "203.0.113.7:4000", "198.51.100.10:3478"), stun...), true, 0, "203.0.113.7:4000", false, false},
		{"IPv6 header", append(v2(t, "[2001:db8::7]:4000", "[2001:db8::1]:3478"), stun...), true, 0, "[2001:db8::7]:4000", false, false},
		{"no header: STUN", stun, false, 1, "", false, false},
		{"no header: TLS", []byte{0x16, 0x03, 0x01, 0, 5, 1, 2, 3, 4, 5, 6, 7, 8}, false, 1, "", false, false},
		{"a signature's start, then not", []byte("\r\n\r\nHELLO WORLD!!"), false, 12, "", false, false},
		{"v1 is not taken", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), false, 1, "", false, false},
		{"LOCAL", append(localHeader(), stun...), true, 0, "", true, false},
		{"truncated", v2(t, "203.0.113.7:4000", "198.51.100.10:3478")[:20], false, 0, "", false, true},
		{"too long", longHeader(), false, 0, "", false, true},
	} {
		r := bytes.NewReader(tc.in)
		h, taken, ok, err := ReadHeader(r)
		if (err != nil) != tc.wantErr || ok != tc.ok || len(taken) != tc.taken {
			t.Errorf("%s: ok %v taken %d err %v", tc.name, ok, len(taken), err)
			continue
		}
		if tc.wantErr {
			if !errors.Is(err, ErrHeader) {
				t.Errorf("%s: %v is not ErrHeader", tc.name, err)
			}
			continue
		}
		if !bytes.Equal(taken, tc.in[:len(taken)]) {
			t.Errorf("%s: taken %q is not the stream's start", tc.name, taken)
		}
		if ok {
			if h.Local != tc.local || (!tc.local && h.Source.String() != tc.src) {
				t.Errorf("%s: %+v", tc.name, h)
			}
			// Exactly the header was read: the STUN message is all left.
			if rest, _ := io.ReadAll(r); !bytes.Equal(rest, stun) {
				t.Errorf("%s: %d bytes left after the header, want the %d of STUN", tc.name, len(rest), len(stun))
			}
		}
	}
}

func localHeader() []byte {
	b := append([]byte(nil), proxyproto.SIGV2...)
	return append(b, 0x20, 0x00, 0, 0) // version 2, LOCAL; UNSPEC; no addresses
}

func longHeader() []byte {
	b := append([]byte(nil), proxyproto.SIGV2...)
	b = append(b, 0x21, 0x11, 0, 0)
	binary.BigEndian.PutUint16(b[14:], MaxHeader+1)
	return append(b, make([]byte, MaxHeader+1)...)
}

// FuzzReadHeader: on any stream ReadHeader either takes a whole header
// (exactly the bytes its length announces, never the stream's bytes
// after it), or gives back what it read, the stream's start, at most the
// signature's 12 bytes; it never panics.
func FuzzReadHeader(f *testing.F) {
	f.Add(v2(f, "203.0.113.7:4000", "198.51.100.10:3478"))
	f.Add(localHeader())
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c"))
	f.Add([]byte{0x00, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		h, taken, ok, err := ReadHeader(r)
		read := len(b) - r.Len()
		switch {
		case ok:
			if err != nil || taken != nil || read != v2Fixed+int(binary.BigEndian.Uint16(b[14:16])) {
				t.Fatalf("header taken with %d bytes read, err %v, taken %q", read, err, taken)
			}
			if !h.Local && (!h.Source.IsValid() || !h.Destination.IsValid()) {
				t.Fatalf("header without addresses: %+v", h)
			}
		case err == nil:
			if len(taken) > len(proxyproto.SIGV2) || read != len(taken) || !bytes.Equal(taken, b[:len(taken)]) {
				t.Fatalf("gave back %q after reading %d bytes", taken, read)
			}
		}
	})
}
