package framing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// frameBytes builds the wire form of payloads by hand, independent of
// AppendFrame, so the reader is checked against the RFC and not against itself.
func frameBytes(payloads ...[]byte) []byte {
	var b []byte
	for _, p := range payloads {
		b = append(b, byte(len(p)>>8), byte(len(p)))
		b = append(b, p...)
	}
	return b
}

func fill(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = seed + byte(i*7)
	}
	return p
}

func TestReader(t *testing.T) {
	big := fill(MaxFrameSize, 3)
	tests := []struct {
		name    string
		in      []byte
		want    [][]byte
		wantErr error // after the frames in want
	}{
		{"empty stream", nil, nil, io.EOF},
		{"empty frame", []byte{0, 0}, [][]byte{{}}, io.EOF},
		{"one byte", []byte{0, 1, 0xAB}, [][]byte{{0xAB}}, io.EOF},
		{"max frame", frameBytes(big), [][]byte{big}, io.EOF},
		{"truncated header", []byte{0}, nil, io.ErrUnexpectedEOF},
		{"truncated payload", []byte{0, 5, 1, 2, 3}, nil, io.ErrUnexpectedEOF},
		{"header only", []byte{0, 5}, nil, io.ErrUnexpectedEOF},
		{
			"back to back",
			frameBytes([]byte("a"), nil, []byte("hello"), fill(5000, 9), []byte("z")),
			[][]byte{[]byte("a"), {}, []byte("hello"), fill(5000, 9), []byte("z")},
			io.EOF,
		},
		{"good then truncated", append(frameBytes([]byte("ok")), 0, 9, 1), [][]byte{[]byte("ok")}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// iotest-style one-byte reads exercise every partial-read path.
			for _, src := range []io.Reader{bytes.NewReader(tt.in), &oneByteReader{b: tt.in}} {
				r := NewReader(src)
				for i, want := range tt.want {
					got, err := r.Next()
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if got == nil {
						t.Fatalf("frame %d: nil slice, want non-nil", i)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
					}
				}
				if _, err := r.Next(); err != tt.wantErr {
					t.Fatalf("end: err = %v, want %v", err, tt.wantErr)
				}
			}
		})
	}
}

type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.b[0]
	r.b = r.b[1:]
	return 1, nil
}

func TestReaderWrapsOtherErrors(t *testing.T) {
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(bytes.NewReader([]byte{0, 4, 1}), &errReader{boom}))
	_, err := r.Next()
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want wrapping %v", err, boom)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func TestAppendFrame(t *testing.T) {
	tests := []struct {
		name string
		p    []byte
		want []byte
		err  error
	}{
		{"empty", nil, []byte{0, 0}, nil},
		{"one", []byte{7}, []byte{0, 1, 7}, nil},
		{"256", fill(256, 1), append([]byte{1, 0}, fill(256, 1)...), nil},
		{"max", fill(MaxFrameSize, 2), append([]byte{0xFF, 0xFF}, fill(MaxFrameSize, 2)...), nil},
		{"too large", fill(MaxFrameSize+1, 2), []byte("pre"), ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("pre")
			got, err := AppendFrame(dst, tt.p)
			if err != tt.err {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil {
				if !bytes.Equal(got[:3], []byte("pre")) || !bytes.Equal(got[3:], tt.want) {
					t.Fatalf("got %x…, want pre+%x…", got[:min(8, len(got))], tt.want[:min(5, len(tt.want))])
				}
			} else if !bytes.Equal(got, tt.want) {
				t.Fatalf("dst changed on error: %q", got)
			}
		})
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, p := range [][]byte{nil, []byte("x"), fill(MaxFrameSize, 5)} {
		if err := w.WriteFrame(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFrame(fill(MaxFrameSize+1, 0)); err != ErrFrameTooLarge {
		t.Fatalf("oversized: err = %v", err)
	}
	want := frameBytes(nil, []byte("x"), fill(MaxFrameSize, 5))
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("wire bytes differ")
	}
}

// countingWriter records each Write call so the test can check that a frame
// is never split across calls.
type countingWriter struct {
	mu    sync.Mutex
	calls [][]byte
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, bytes.Clone(p))
	return len(p), nil
}

func TestWriterOneWritePerFrame(t *testing.T) {
	var cw countingWriter
	w := NewWriter(&cw)
	for _, n := range []int{0, 1, 1000, MaxFrameSize} {
		if err := w.WriteFrame(fill(n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if len(cw.calls) != 4 {
		t.Fatalf("%d Write calls, want 4", len(cw.calls))
	}
	for i, c := range cw.calls {
		if int(binary.BigEndian.Uint16(c)) != len(c)-2 {
			t.Fatalf("call %d is not exactly one frame", i)
		}
	}
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestWriterStickyError(t *testing.T) {
	w := NewWriter(shortWriter{})
	err := w.WriteFrame([]byte("abcd"))
	if !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("err = %v, want ErrShortWrite", err)
	}
	if err2 := w.WriteFrame([]byte("x")); !errors.Is(err2, io.ErrShortWrite) {
		t.Fatalf("second write: err = %v, want the sticky error", err2)
	}
}

// TestConcurrentWriters writes from 8 goroutines over a real pipe and checks
// that every frame arrives whole: each payload carries its writer and sequence
// number and a body derived from them.
func TestConcurrentWriters(t *testing.T) {
	const writers, perWriter = 8, 200
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()

	w := NewWriter(a)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for seq := range perWriter {
				n := 4 + rng.IntN(3000)
				p := fill(n, byte(g*31+seq))
				p[0], p[1] = byte(g), byte(seq>>8)
				p[2], p[3] = byte(seq), 0
				if err := w.WriteFrame(p); err != nil {
					t.Errorf("writer %d: %v", g, err)
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		a.Close()
	}()

	r := NewReader(b)
	next := make([]int, writers)
	for total := 0; ; total++ {
		p, err := r.Next()
		if err == io.EOF {
			if total != writers*perWriter {
				t.Fatalf("got %d frames, want %d", total, writers*perWriter)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		g, seq := int(p[0]), int(p[1])<<8|int(p[2])
		if g >= writers || seq != next[g] {
			t.Fatalf("frame from writer %d seq %d, want seq %d", g, seq, next[g])
		}
		next[g]++
		want := fill(len(p), byte(g*31+seq))
		if !bytes.Equal(p[4:], want[4:]) {
			t.Fatalf("writer %d seq %d: payload corrupted", g, seq)
		}
	}
}

// BenchmarkReadWrite moves 65535-byte frames (the largest RFC 4571 allows)
// over a loopback TCP connection.
func BenchmarkReadWrite(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c1.Close()
	c2, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	defer c2.Close()

	payload := fill(MaxFrameSize, 1)
	w, r := NewWriter(c1), NewReader(c2)
	done := make(chan error, 1)
	b.SetBytes(MaxFrameSize)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if err := w.WriteFrame(payload); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range b.N {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// WriteFrames cuts a payload into frames in one write; NextInto reads them
// into buffers of their own. Both are checked against the byte layout and
// against Next, with whole and one-byte reads.
func TestWriteFramesNextInto(t *testing.T) {
	for _, tc := range []struct{ size, max int }{{0, 10}, {1, 10}, {10, 10}, {11, 10}, {70000, MaxFrameSize}, {65536, MaxFrameSize}, {65536, 8192}, {5000, 0}, {13, 4}} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		p := fill(tc.size, byte(tc.size))
		n, err := w.WriteFrames(p, tc.max)
		if err != nil || n != len(p) {
			t.Fatalf("%+v: wrote %d, %v", tc, n, err)
		}
		max := tc.max
		if max == 0 {
			max = MaxFrameSize
		}
		// Equal frames: as few as max allows, none shorter than needed.
		var want [][]byte
		if n := (len(p) + max - 1) / max; n > 0 {
			size := (len(p) + n - 1) / n
			for off := 0; off < len(p); off += size {
				want = append(want, p[off:min(off+size, len(p))])
			}
			if len(want) != n {
				t.Fatalf("%+v: %d frames, want %d", tc, len(want), n)
			}
		}
		if !bytes.Equal(buf.Bytes(), frameBytes(want...)) {
			t.Fatalf("%+v: wire bytes differ from the frames", tc)
		}
		for _, src := range []io.Reader{bytes.NewReader(buf.Bytes()), &oneByteReader{b: buf.Bytes()}} {
			r := NewReader(src)
			for i, f := range want {
				got, err := r.NextInto(func(n int) []byte { return make([]byte, n) })
				if err != nil || !bytes.Equal(got, f) {
					t.Fatalf("%+v: frame %d: %d bytes, %v", tc, i, len(got), err)
				}
			}
			if _, err := r.NextInto(func(n int) []byte { return make([]byte, n) }); err != io.EOF {
				t.Fatalf("%+v: after the frames: %v, want EOF", tc, err)
			}
		}
	}
	// A payload larger than max frames is refused by WriteFrame only.
	if _, err := NewWriter(io.Discard).WriteFrames(make([]byte, 3*MaxFrameSize), 0); err != nil {
		t.Fatal(err)
	}
}

// chunked returns the stream in reads of the given sizes (the last
// repeats), as a TCP socket does when segments arrive unevenly.
type chunked struct {
	b     []byte
	sizes []int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := c.sizes[0]
	if len(c.sizes) > 1 {
		c.sizes = c.sizes[1:]
	}
	k := min(len(p), n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

// NextInto reads ahead into the spare capacity of the frame's buffer; what
// it read beyond the frame must survive whole even when it is more than
// the small read-ahead buffer holds. (Found in the NAT lab: frames of 9,000
// bytes in 16 KiB buffers lost their neighbours' bytes.)
func TestNextIntoReadAheadLargerThanBuffer(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i, size := range []int{100, 3000, 9000, 9000, 9000, 9000} {
		p := bytes.Repeat([]byte{byte(i + 1)}, size)
		want = append(want, p)
		stream, _ = AppendFrame(stream, p)
	}
	r := NewReader(&chunked{b: stream, sizes: []int{2, 1000, 20000}})
	alloc := func(n int) []byte { return make([]byte, n, 16<<10) }
	for i, w := range want {
		got, err := r.NextInto(alloc)
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("frame %d: %d bytes (want %d), err %v", i, len(got), len(w), err)
		}
	}
}

// WriteEach writes one frame per payload, whatever their sizes, in order.
func TestWriteEach(t *testing.T) {
	payloads := [][]byte{fill(1, 1), {}, fill(MaxFrameSize, 2), fill(300, 3)}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	n, err := w.WriteEach(payloads)
	if err != nil || n != 1+MaxFrameSize+300 {
		t.Fatalf("WriteEach = %d, %v", n, err)
	}
	if !bytes.Equal(buf.Bytes(), frameBytes(payloads...)) {
		t.Fatal("wire form differs from one frame per payload")
	}
	if _, err := w.WriteEach([][]byte{fill(MaxFrameSize+1, 0)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized payload: err = %v, want ErrFrameTooLarge", err)
	}
	sw := NewWriter(shortWriter{})
	if _, err := sw.WriteEach(payloads); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("short write: err = %v", err)
	}
	if err := sw.WriteFrame([]byte("x")); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("after a failed WriteEach: err = %v, want the sticky error", err)
	}
}
