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

// FuzzWriteFrames: any payload and frame limit give as few frames as the
// limit allows, none above it, that read back as the payload.
func FuzzWriteFrames(f *testing.F) {
	f.Add(uint32(65536), uint16(0))
	f.Add(uint32(0), uint16(10))
	f.Add(uint32(13), uint16(4))
	f.Add(uint32(200000), uint16(8192))
	f.Fuzz(func(t *testing.T, size uint32, limit uint16) {
		size %= 1 << 20
		p := fill(int(size), byte(size))
		var buf bytes.Buffer
		if n, err := NewWriter(&buf).WriteFrames(p, int(limit)); err != nil || n != len(p) {
			t.Fatalf("wrote %d of %d: %v", n, len(p), err)
		}
		max := int(limit)
		if max == 0 {
			max = MaxFrameSize
		}
		r := NewReader(&buf)
		var got []byte
		frames := 0
		for {
			fr, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(fr) > max {
				t.Fatalf("frame of %d bytes, limit %d", len(fr), max)
			}
			got = append(got, fr...)
			frames++
		}
		if want := (len(p) + max - 1) / max; frames != want {
			t.Fatalf("%d frames for %d bytes at %d, want %d", frames, len(p), max, want)
		}
		if !bytes.Equal(got, p) {
			t.Fatal("payload differs")
		}
	})
}
