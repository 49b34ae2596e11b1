package framing

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// MaxFrameSize is the largest payload a frame can carry: the length prefix is
// 16 bits (RFC 4571 §2).
const MaxFrameSize = 65535

// headerSize is the length prefix.
const headerSize = 2

// ErrFrameTooLarge is returned when a payload does not fit in one frame.
var ErrFrameTooLarge = errors.New("framing: frame larger than 65535 bytes")

// Read buffers come from two pools: small frames (RTP, STUN) share 4 KiB
// buffers, bigger ones get a 64 KiB buffer. A Reader holds a buffer only
// while it has bytes in it: between bursts it waits for the next header
// with no buffer at all, so a media server's thousands of idle connections
// cost no read buffers.
const smallBuffer = 4096

var (
	smallPool = sync.Pool{New: func() any { b := make([]byte, smallBuffer); return &b }}
	bigPool   = sync.Pool{New: func() any { b := make([]byte, headerSize+MaxFrameSize); return &b }}
)

// Reader reads RFC 4571 frames (16-bit big-endian length prefix) from a
// stream. It is not safe for concurrent use; one goroutine owns the read side
// of a connection.
type Reader struct {
	r   io.Reader
	hdr [headerSize]byte
	// buf is a pooled buffer holding bytes read ahead; buf[off:end] are
	// not yet consumed. nil while nothing is buffered.
	buf      *[]byte
	off, end int
}

// NewReader returns a Reader of frames from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: r}
}

// Buffered is the number of bytes read ahead of the last frame returned.
func (r *Reader) Buffered() int { return r.end - r.off }

// Next returns the next frame's payload. The slice is valid until the next
// call. Zero-length frames are returned as empty non-nil slices.
//
// A stream that ends inside a frame (header or payload) returns
// io.ErrUnexpectedEOF; a clean end between frames returns io.EOF. Both are
// returned unwrapped, as io.Reader does. Other read errors are wrapped.
func (r *Reader) Next() ([]byte, error) {
	if r.off == r.end {
		// Nothing read ahead: give the buffer back and wait for a header
		// holding nothing but these two bytes.
		r.release()
		if n, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
			return nil, readErr(err, n == 0)
		}
		return r.payload(int(binary.BigEndian.Uint16(r.hdr[:])), 0)
	}
	if r.end-r.off < headerSize {
		if err := r.fill(headerSize); err != nil {
			return nil, err
		}
	}
	b := *r.buf
	size := int(binary.BigEndian.Uint16(b[r.off:]))
	r.off += headerSize
	return r.payload(size, r.end-r.off)
}

// NextInto returns the next frame in a buffer of its own that alloc
// provides (alloc(n) must return n bytes; spare capacity beyond them is
// used to read ahead and never appears in the frame). A frame larger than what is
// already read ahead is read straight into that buffer, so big frames are
// copied once, from the kernel; small ones come from the read-ahead.
func (r *Reader) NextInto(alloc func(n int) []byte) ([]byte, error) {
	if r.off == r.end {
		r.release()
		if n, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
			return nil, readErr(err, n == 0)
		}
	} else {
		if r.end-r.off < headerSize {
			if err := r.fill(headerSize); err != nil {
				return nil, err
			}
		}
		copy(r.hdr[:], (*r.buf)[r.off:])
		r.off += headerSize
	}
	size := int(binary.BigEndian.Uint16(r.hdr[:]))
	dst := alloc(size)
	have := 0
	if r.buf != nil {
		have = copy(dst, (*r.buf)[r.off:r.end])
		r.off += have
	}
	if have < size {
		// Read into dst's spare capacity too: the next frame's header
		// usually arrives with this payload, and keeping it saves a read.
		got, err := io.ReadAtLeast(r.r, dst[have:cap(dst)], size-have)
		if err != nil {
			return nil, readErr(err, false)
		}
		if extra := dst[size : have+got]; len(extra) > 0 {
			if r.buf == nil || len(*r.buf) < len(extra) {
				r.release()
				r.acquire(len(extra))
			}
			r.off, r.end = 0, copy(*r.buf, extra)
		}
	}
	return dst[:size], nil
}

// payload returns the frame of size bytes whose first have bytes are
// buffered at off.
func (r *Reader) payload(size, have int) ([]byte, error) {
	if size == 0 {
		return r.hdr[:0], nil
	}
	if have >= size {
		p := (*r.buf)[r.off : r.off+size]
		r.off += size
		return p, nil
	}
	if r.buf == nil {
		r.acquire(size)
	} else if len(*r.buf)-r.off < size {
		r.grow(size)
	}
	if err := r.fill(size); err != nil {
		return nil, err
	}
	p := (*r.buf)[r.off : r.off+size]
	r.off += size
	return p, nil
}

// fill reads until at least n bytes are buffered from off, reading ahead
// as far as the buffer allows so that small frames arriving together cost
// one read.
func (r *Reader) fill(n int) error {
	b := *r.buf
	if len(b)-r.off < n {
		r.grow(n)
		b = *r.buf
	}
	for r.end-r.off < n {
		k, err := r.r.Read(b[r.end:])
		r.end += k
		if r.end-r.off >= n {
			break
		}
		if err != nil {
			return readErr(err, false) // header or payload started: any end is inside a frame
		}
	}
	return nil
}

// acquire takes a buffer for a frame of size bytes.
func (r *Reader) acquire(size int) {
	if size <= smallBuffer {
		r.buf = smallPool.Get().(*[]byte)
	} else {
		r.buf = bigPool.Get().(*[]byte)
	}
	r.off, r.end = 0, 0
}

// grow moves the unconsumed bytes to a buffer with room for n bytes from
// its start.
func (r *Reader) grow(n int) {
	old, off, end := r.buf, r.off, r.end
	if n <= smallBuffer && len(*old) >= smallBuffer {
		// room enough once compacted
		copy(*old, (*old)[off:end])
		r.off, r.end = 0, end-off
		return
	}
	r.buf = bigPool.Get().(*[]byte)
	r.end = copy(*r.buf, (*old)[off:end])
	r.off = 0
	put(old)
}

func (r *Reader) release() {
	if r.buf != nil {
		put(r.buf)
		r.buf = nil
	}
	r.off, r.end = 0, 0
}

func put(b *[]byte) {
	if len(*b) == smallBuffer {
		smallPool.Put(b)
	} else {
		bigPool.Put(b)
	}
}

// readErr keeps io.EOF only for a stream that ended on a frame boundary.
func readErr(err error, boundary bool) error {
	switch {
	case errors.Is(err, io.EOF) && boundary:
		return io.EOF
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return io.ErrUnexpectedEOF
	default:
		return fmt.Errorf("framing: read: %w", err)
	}
}

// Writer writes frames. It is safe for concurrent use: each frame goes out in
// ONE Write call (header and payload together) under a mutex, so frames from
// different goroutines never interleave. The agent's consent checks share the
// connection with application writes, which is why this matters.
type Writer struct {
	mu sync.Mutex // guards following
	w  io.Writer
	// buf is reused for header+payload; it grows to the largest frame written.
	buf  []byte
	hdrs []byte      // headers of a WriteFrames call
	bufs net.Buffers // its header and payload slices, reused
	// err is sticky: after a failed or short Write the peer may have received
	// part of a frame, the stream is out of sync, and any later frame would be
	// misread. Every further WriteFrame returns this error.
	err error
}

// Err is the error that stopped the Writer, nil while it works.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// NewWriter returns a Writer that writes frames to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// WriteFrame writes p as one frame. len(p) > MaxFrameSize returns
// ErrFrameTooLarge and writes nothing (the stream stays usable).
func (w *Writer) WriteFrame(p []byte) error {
	if len(p) > MaxFrameSize {
		return ErrFrameTooLarge
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	// AppendFrame cannot fail here: the size was checked above.
	w.buf, _ = AppendFrame(w.buf[:0], p)
	n, err := w.w.Write(w.buf)
	if err == nil && n != len(w.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("framing: write: %w", err)
		return w.err
	}
	return nil
}

// WriteFrames writes p as consecutive frames of at most max bytes each
// (max ≤ MaxFrameSize), in one writev where the connection supports it:
// the payload is not copied, only the headers are built. Frames from
// other writers never interleave with them. It returns the payload bytes
// written.
func (w *Writer) WriteFrames(p []byte, max int) (int, error) {
	if max <= 0 || max > MaxFrameSize {
		max = MaxFrameSize
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	n := (len(p) + max - 1) / max
	if n == 0 {
		return 0, nil
	}
	if cap(w.hdrs) < 2*n {
		w.hdrs = make([]byte, 2*n)
		w.bufs = make(net.Buffers, 0, 2*n)
	}
	hdrs := w.hdrs[:2*n]
	// Equal frames, not max-sized ones and a remainder: a 64 KiB write
	// is two 32 KiB frames, not 65,535 bytes and a 1-byte frame that
	// costs the reader a queue entry of its own.
	size := (len(p) + n - 1) / n
	bufs := w.bufs[:0]
	total := len(p)
	for i, off := 0, 0; off < len(p); i++ {
		k := min(size, len(p)-off)
		binary.BigEndian.PutUint16(hdrs[2*i:], uint16(k))
		bufs = append(bufs, hdrs[2*i:2*i+2], p[off:off+k])
		off += k
		total += 2
	}
	// WriteTo consumes bufs (the local slice header, not w.bufs); the
	// deferred clear, given the whole list before that, drops the
	// references to the caller's buffer that the reused list would keep.
	defer clear(bufs)
	written, err := bufs.WriteTo(w.w)
	if err == nil && int(written) != total {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("framing: write: %w", err)
		return 0, w.err
	}
	return len(p), nil
}

// AppendFrame appends the 2-byte length header and p to dst and returns the
// extended slice. len(p) > MaxFrameSize returns dst unchanged and
// ErrFrameTooLarge.
func AppendFrame(dst, p []byte) ([]byte, error) {
	if len(p) > MaxFrameSize {
		return dst, ErrFrameTooLarge
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(p)))
	return append(dst, p...), nil
}

// WriteEach writes each payload as one frame, all in one writev where the
// connection supports it (each payload ≤ MaxFrameSize, else
// ErrFrameTooLarge and nothing is written). Payloads are not copied. It
// returns the payload bytes written: all of them, or 0 with the sticky
// error.
func (w *Writer) WriteEach(payloads [][]byte) (int, error) {
	total, n := 0, 0
	for _, p := range payloads {
		if len(p) > MaxFrameSize {
			return 0, ErrFrameTooLarge
		}
		n += len(p)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if len(payloads) == 0 {
		return 0, nil
	}
	if cap(w.hdrs) < 2*len(payloads) {
		w.hdrs = make([]byte, 2*len(payloads))
		w.bufs = make(net.Buffers, 0, 2*len(payloads))
	}
	hdrs := w.hdrs[:2*len(payloads)]
	bufs := w.bufs[:0]
	for i, p := range payloads {
		binary.BigEndian.PutUint16(hdrs[2*i:], uint16(len(p)))
		bufs = append(bufs, hdrs[2*i:2*i+2], p)
		total += 2 + len(p)
	}
	defer clear(bufs)
	written, err := bufs.WriteTo(w.w)
	if err == nil && int(written) != total {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("framing: write: %w", err)
		return 0, w.err
	}
	return n, nil
}
