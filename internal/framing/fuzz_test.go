package framing

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/pion/stun"
)

// FuzzReader checks that Next never panics and that the frames it returns,
// re-encoded, reproduce the input: exactly on io.EOF, a proper prefix on
// io.ErrUnexpectedEOF.
func FuzzReader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0})
	f.Add([]byte{0, 1, 0xAB, 0, 2, 1})
	f.Add(frameBytes([]byte("hello"), nil, fill(300, 1)))
	f.Add([]byte{0xFF, 0xFF, 1, 2, 3})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		var out []byte
		for {
			p, err := r.Next()
			if err != nil {
				switch {
				case errors.Is(err, io.EOF):
					if !bytes.Equal(out, in) {
						t.Fatalf("clean EOF but re-encoded %d bytes of %d", len(out), len(in))
					}
				case errors.Is(err, io.ErrUnexpectedEOF):
					if len(out) >= len(in) || !bytes.Equal(out, in[:len(out)]) {
						t.Fatalf("truncated stream: re-encoding is not a proper prefix")
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if p == nil {
				t.Fatal("nil payload")
			}
			out, err = AppendFrame(out, p)
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzNextInto checks NextInto against the stream's own framing with
// uneven reads (chunk sizes from the fuzzer) and buffers of varying spare
// capacity: every frame comes back whole, in order.
func FuzzNextInto(f *testing.F) {
	f.Add(frameBytes([]byte("a"), fill(3000, 2), fill(9000, 3), fill(9000, 4)), uint16(1000), uint16(20000), uint16(7000))
	f.Add(frameBytes(fill(65535, 1), nil, []byte("z")), uint16(2), uint16(1), uint16(0))
	f.Fuzz(func(t *testing.T, in []byte, c1, c2, spare uint16) {
		var want [][]byte
		ref := NewReader(bytes.NewReader(in))
		for {
			p, err := ref.Next()
			if err != nil {
				break
			}
			want = append(want, append([]byte(nil), p...))
		}
		r := NewReader(&chunked{b: in, sizes: []int{max(int(c1), 1), max(int(c2), 1)}})
		alloc := func(n int) []byte { return make([]byte, n, n+int(spare)) }
		for i, w := range want {
			got, err := r.NextInto(alloc)
			if err != nil || !bytes.Equal(got, w) {
				t.Fatalf("frame %d: %d bytes (want %d), %v", i, len(got), len(w), err)
			}
		}
	})
}

// FuzzIsSTUN checks that IsSTUN never panics and agrees with pion/stun: a
// buffer IsSTUN accepts must decode as a STUN header whose length covers the
// whole buffer.
func FuzzIsSTUN(f *testing.F) {
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, p []byte) {
		if !IsSTUN(p) {
			return
		}
		var m stun.Message
		m.Raw = append([]byte(nil), p...)
		// Attribute parsing may still fail on garbage attributes; the header
		// and cookie must not.
		err := m.Decode()
		if err != nil && len(p) == 20 {
			t.Fatalf("header-only message rejected by pion/stun: %v", err)
		}
		if err == nil && int(m.Length) != len(p)-20 {
			t.Fatalf("length %d, buffer %d", m.Length, len(p))
		}
	})
}
