package framing

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// MaxFrameSize is the largest payload a frame can carry: the length prefix is
// 16 bits (RFC 4571 §2).
const MaxFrameSize = 65535

// headerSize is the length prefix.
const headerSize = 2

// ErrFrameTooLarge is returned when a payload does not fit in one frame.
var ErrFrameTooLarge = errors.New("framing: frame larger than 65535 bytes")

// readBufferSize keeps a Reader small: media servers hold thousands of
// connections, and bufio passes reads larger than its buffer straight to the
// underlying reader, so big frames do not need a big bufio buffer.
const readBufferSize = 4096

// Reader reads RFC 4571 frames (16-bit big-endian length prefix) from a
// stream. It is not safe for concurrent use; one goroutine owns the read side
// of a connection.
type Reader struct {
	br  *bufio.Reader
	hdr [headerSize]byte
	// buf holds the current payload; it grows to the largest frame seen
	// (at most MaxFrameSize) and is reused, so Next does not allocate per frame.
	buf []byte
}

// NewReader returns a Reader that reads frames from r through a small
// bufio.Reader.
func NewReader(r io.Reader) *Reader {
	return &Reader{
		br:  bufio.NewReaderSize(r, readBufferSize),
		buf: make([]byte, 0, 512),
	}
}

// Next returns the next frame's payload. The slice is valid until the next
// call. Zero-length frames are returned as empty non-nil slices.
//
// A stream that ends inside a frame (header or payload) returns
// io.ErrUnexpectedEOF; a clean end between frames returns io.EOF. Both are
// returned unwrapped, as io.Reader does. Other read errors are wrapped.
func (r *Reader) Next() ([]byte, error) {
	if n, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return nil, readErr(err, n == 0)
	}
	size := int(binary.BigEndian.Uint16(r.hdr[:]))
	if cap(r.buf) < size {
		r.buf = make([]byte, size)
	}
	p := r.buf[:size]
	if _, err := io.ReadFull(r.br, p); err != nil {
		// The header was read: any end of stream is inside the frame.
		return nil, readErr(err, false)
	}
	return p, nil
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
	buf []byte
	// err is sticky: after a failed or short Write the peer may have received
	// part of a frame, the stream is out of sync, and any later frame would be
	// misread. Every further WriteFrame returns this error.
	err error
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
