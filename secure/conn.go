package secure

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"
)

// Conn is an authenticated, encrypted stream over a transport net.Conn,
// made by Client or Server. Read and Write may run concurrently with each
// other; Reads are serialised among themselves, and so are Writes.
//
// End of stream is explicit: CloseWrite sends an end-of-stream record and
// Read returns io.EOF only after the peer's. If the transport ends without
// one (the peer crashed, was killed, the path broke) Read returns a
// *TruncatedError that says how many bytes arrived.
type Conn struct {
	t         net.Conn
	initiator bool

	readMu sync.Mutex // serialises Read; guards following
	rcs    *noise.CipherState
	rbuf   []byte // the record being read
	rhave  int    // bytes of it read so far (a deadline can interrupt a record)
	plain  []byte // decrypted application data not yet returned
	rseq   uint64 // records opened, for error messages
	recvd  uint64 // application bytes received
	rerr   error  // sticky: io.EOF after the peer's end of stream, or the failure

	writeMu sync.Mutex // serialises Write and CloseWrite; guards following
	wcs     *noise.CipherState
	wbuf    []byte
	sent    uint64 // application bytes sent
	wclosed bool   // CloseWrite sent our end-of-stream record
	werr    error  // sticky: a failed write leaves the stream unusable

	closed atomic.Bool
}

var _ net.Conn = (*Conn)(nil)

func newConn(t net.Conn, initiator bool, send, recv *noise.CipherState) *Conn {
	return &Conn{t: t, initiator: initiator, wcs: send, rcs: recv, rbuf: make([]byte, MaxRecordSize)}
}

// Read reads application data. It returns io.EOF after the peer's
// end-of-stream record, a *TruncatedError (errors.Is ErrTruncated) if the
// transport ended before it, an error wrapping ErrRecord if a record failed
// authentication, and the transport's timeout error on a read deadline
// (after which Read can be called again).
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		typ, payload, err := c.readRecord()
		if err != nil {
			if isTimeout(err) && !c.closed.Load() {
				return 0, err // the record is resumed by the next Read
			}
			c.rerr = c.readEndErr(err)
			return 0, c.rerr
		}
		switch typ {
		case recData:
			c.plain = payload
			c.recvd += uint64(len(payload))
		case recEnd:
			if err := checkEnd(payload, c.recvd); err != nil {
				c.rerr = err
			} else {
				c.rerr = io.EOF
			}
		default:
			c.rerr = fmt.Errorf("%w: unexpected %s record %d", ErrRecord, typ, c.rseq)
		}
	}
	n := copy(p, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

// readRecord reads and opens one record. Progress survives a timeout.
func (c *Conn) readRecord() (recordType, []byte, error) {
	if err := c.fill(headerLen); err != nil {
		return 0, nil, err
	}
	n, err := bodyLen(c.rbuf[:headerLen])
	if err != nil {
		return 0, nil, err
	}
	if err := c.fill(headerLen + n); err != nil {
		return 0, nil, err
	}
	c.rhave = 0
	c.rseq++
	return openRecord(c.rcs, c.rbuf[headerLen:headerLen+n], c.rseq)
}

// fill reads until rbuf holds want bytes of the current record.
func (c *Conn) fill(want int) error {
	for c.rhave < want {
		n, err := c.t.Read(c.rbuf[c.rhave:want])
		c.rhave += n
		if err != nil && c.rhave < want {
			return err
		}
	}
	return nil
}

// readEndErr classifies a failure of the read side.
func (c *Conn) readEndErr(err error) error {
	switch {
	case c.closed.Load():
		return fmt.Errorf("secure: read: %w", net.ErrClosed)
	case errors.Is(err, ErrRecord):
		return err
	}
	return &TruncatedError{Received: c.recvd, Err: err}
}

// Write sends p in records of at most MaxPayload bytes. After an error the
// stream is unusable (a record may be half written) and every later Write
// returns the same error.
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.writable(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(p) {
		chunk := p[n:min(len(p), n+MaxPayload)]
		if err := c.writeRecord(recData, chunk); err != nil {
			return n, err
		}
		n += len(chunk)
		c.sent += uint64(len(chunk))
	}
	return n, nil
}

// CloseWrite sends the end-of-stream record: the peer's Read returns io.EOF
// once it has read everything before it. Reading goes on. The transport is
// not half-closed: its own liveness checks (ICE consent freshness on an
// agent Conn) keep running in both directions until Close, so a peer that
// stops answering is still noticed. Calling it again does nothing.
func (c *Conn) CloseWrite() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.wclosed {
		return nil
	}
	if err := c.writable(); err != nil {
		return err
	}
	if err := c.writeRecord(recEnd, endPayload(c.sent)); err != nil {
		return err
	}
	c.wclosed = true
	return nil
}

func (c *Conn) writable() error {
	switch {
	case c.closed.Load():
		return fmt.Errorf("secure: write: %w", net.ErrClosed)
	case c.wclosed:
		return ErrWriteClosed
	}
	return c.werr
}

// writeRecord seals and writes one record; it runs under writeMu.
func (c *Conn) writeRecord(typ recordType, payload []byte) error {
	rec, err := sealRecord(c.wbuf, c.wcs, typ, payload)
	if err == nil {
		c.wbuf = rec[:0]
		_, err = c.t.Write(rec)
	}
	if err != nil {
		if c.closed.Load() {
			err = net.ErrClosed
		}
		c.werr = fmt.Errorf("secure: write: %w", err)
		return c.werr
	}
	return nil
}

// Close closes the transport. It does not send an end-of-stream record:
// a stream closed without CloseWrite reads as truncated at the peer, which
// is the point — call CloseWrite once everything was sent.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.t.Close()
}

// Initiator reports whether this side sent the first handshake message.
func (c *Conn) Initiator() bool { return c.initiator }

// Received is the number of application bytes received so far.
func (c *Conn) Received() uint64 {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return c.recvd
}

// LocalAddr is the transport's local address.
func (c *Conn) LocalAddr() net.Addr { return c.t.LocalAddr() }

// RemoteAddr is the transport's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.t.RemoteAddr() }

// SetDeadline sets the transport's deadlines. A read that times out can be
// retried; a write that times out leaves the stream unusable, as in TLS.
func (c *Conn) SetDeadline(t time.Time) error { return c.t.SetDeadline(t) }

// SetReadDeadline sets the transport's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.t.SetReadDeadline(t) }

// SetWriteDeadline sets the transport's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.t.SetWriteDeadline(t) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
