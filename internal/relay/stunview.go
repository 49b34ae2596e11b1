package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// errHandOff ends the STUN server's reading of a connection that turned
// out to be a TURN client's.
var errHandOff = errors.New("relay: a TURN request on a STUN connection; handed to the TURN server")

// stunView is a connection as the STUN server holds it. A client may send
// Binding requests before its first TURN request on the same connection
// (RFC 8656 allows it, and coturn answers both on one port): when a
// message that is not a Binding arrives, the view keeps its first bytes,
// fails the STUN server's read, and on the STUN server's Close hands the
// connection to pion instead of closing it.
type stunView struct {
	c *clientConn

	head      [frameHead]byte // the frame head being read, by the STUN server's goroutine
	frames    framer
	handOff   atomic.Bool // set by the reading goroutine before it fails the read
	closeOnce sync.Once
}

// The STUN message types the STUN server keeps (RFC 8489 §5: method
// Binding, class request or indication).
const (
	bindingRequest    = 0x0001
	bindingIndication = 0x0011
)

func (v *stunView) Read(p []byte) (int, error) {
	c := v.c
	if v.frames.left == 0 && v.frames.headN == 0 && len(p) >= frameHead {
		// A new message: look at its type before the STUN server does.
		if err := v.readHead(); err != nil {
			return 0, err
		}
		if t := binary.BigEndian.Uint16(v.head[:2]); t != bindingRequest && t != bindingIndication {
			c.pending = append(bytes.Clone(v.head[:]), c.pending...)
			v.handOff.Store(true)
			return 0, errHandOff
		}
		n := copy(p, v.head[:])
		v.frames.take(p[:n])
		return n, nil
	}
	// The rest of a message, and not beyond it.
	if v.frames.left > 0 {
		p = p[:min(len(p), v.frames.left)]
	} else if v.frames.headN > 0 {
		p = p[:min(len(p), frameHead-v.frames.headN)]
	}
	var n int
	var err error
	if len(c.pending) > 0 {
		n = copy(p, c.pending)
		c.pending = c.pending[n:]
	} else {
		n, err = c.stream.Read(p)
	}
	v.frames.take(p[:n])
	return n, err
}

// readHead reads the next message's first bytes, from what the
// demultiplexer read already and then from the stream.
func (v *stunView) readHead() error {
	n := copy(v.head[:], v.c.pending)
	v.c.pending = v.c.pending[n:]
	if n < frameHead {
		if _, err := io.ReadFull(v.c.stream, v.head[n:]); err != nil {
			return err
		}
	}
	return nil
}

// Close is the STUN server's: it closes the connection, or hands it over.
func (v *stunView) Close() error {
	var err error
	v.closeOnce.Do(func() {
		if !v.handOff.Load() {
			err = v.c.shut()
			return
		}
		v.c.stream.SetDeadline(time.Time{}) // the STUN server's idle deadline
		v.c.s.toPion(v.c)
	})
	return err
}

func (v *stunView) Write(p []byte) (int, error)        { return v.c.stream.Write(p) }
func (v *stunView) LocalAddr() net.Addr                { return v.c.raw.LocalAddr() }
func (v *stunView) RemoteAddr() net.Addr               { return v.c.raw.RemoteAddr() }
func (v *stunView) SetDeadline(t time.Time) error      { return v.c.stream.SetDeadline(t) }
func (v *stunView) SetReadDeadline(t time.Time) error  { return v.c.stream.SetReadDeadline(t) }
func (v *stunView) SetWriteDeadline(t time.Time) error { return v.c.stream.SetWriteDeadline(t) }

// framer finds message ends in a stream of STUN messages (RFC 8489 §5: a
// 20-byte header whose length field counts the rest), so that the STUN
// server's reads stop at each message's end: the stunView only lets
// Binding messages through, and looks at the type of each one first.
type framer struct {
	left  int // bytes of the current message still to come, after its head
	head  [frameHead]byte
	headN int // bytes of the next message's head seen so far
}

// take returns how many bytes of data, which continues the stream, belong
// to the current message: all of them, or up to the message's end.
func (f *framer) take(data []byte) int {
	n := 0
	for n < len(data) {
		if f.left > 0 {
			k := min(f.left, len(data)-n)
			f.left -= k
			n += k
			if f.left == 0 {
				return n
			}
			continue
		}
		k := copy(f.head[f.headN:], data[n:])
		f.headN += k
		n += k
		if f.headN == frameHead {
			f.headN = 0
			f.left = stunHeader + int(binary.BigEndian.Uint16(f.head[2:4])) - frameHead
		}
	}
	return n
}
