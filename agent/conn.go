package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/framing"
)

// Conn is the selected candidate pair's TCP connection. Application bytes
// travel in RFC 4571 frames (RFC 6544 §7.1) and share the connection with
// consent checks. Closing the Conn closes the Agent.
type Conn struct {
	a             *Agent
	pc            *pconn
	local, remote candidate.Candidate
	path          string
	took          time.Duration // from the peer's credentials to selection

	readMu  sync.Mutex // serialises Read; guards following
	pending []byte
	pendBuf *[]byte

	writeMu sync.Mutex // serialises Write so one Write's frames stay in order

	rd deadline
}

var _ net.Conn = (*Conn)(nil)

// Read reads application data. It returns io.EOF after the peer closed its
// sending side, and an error wrapping ErrConsentExpired when consent was lost.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for len(c.pending) == 0 {
		if c.pendBuf != nil {
			framePool.Put(c.pendBuf)
			c.pendBuf = nil
		}
		select {
		case bp, ok := <-c.pc.inbox:
			if !ok {
				return 0, c.readEndErr()
			}
			c.pendBuf, c.pending = bp, *bp
		case <-c.pc.done:
			return 0, c.closedErr()
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// readEndErr maps the reader's end: the peer's FIN is io.EOF.
func (c *Conn) readEndErr() error {
	err := c.pc.readErr
	if err == nil || errors.Is(err, io.EOF) {
		return io.EOF
	}
	if c.pc.closed() {
		return c.closedErr()
	}
	return fmt.Errorf("agent: read: %w", err)
}

func (c *Conn) closedErr() error {
	err := c.pc.closeErr()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// Write sends p in frames of at most 65535 bytes.
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.pc.closed() {
		return 0, c.closedErr()
	}
	n := 0
	for n < len(p) {
		chunk := p[n:min(len(p), n+framing.MaxFrameSize)]
		if err := c.pc.fw.WriteFrame(chunk); err != nil {
			if c.pc.closed() {
				return n, c.closedErr()
			}
			return n, fmt.Errorf("agent: write: %w", err)
		}
		n += len(chunk)
		c.pc.bytesOut.Add(uint64(len(chunk)))
	}
	return n, nil
}

// CloseWrite shuts down the sending side (TCP FIN): the peer reads io.EOF.
// Consent checks stop in both directions from then on, since neither side
// could answer them; TCP itself still reports a vanished peer.
func (c *Conn) CloseWrite() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.a.post(func() { c.a.consentOff = true })
	if err := c.pc.closeWrite(); err != nil {
		return fmt.Errorf("agent: close write: %w", err)
	}
	return nil
}

// Close closes the connection and its agent.
func (c *Conn) Close() error { return c.a.Close() }

// LocalAddr is the local TCP address of the selected connection.
func (c *Conn) LocalAddr() net.Addr { return c.pc.c.LocalAddr() }

// RemoteAddr is the peer's TCP address as seen by this host.
func (c *Conn) RemoteAddr() net.Addr { return c.pc.c.RemoteAddr() }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	return c.pc.c.SetWriteDeadline(t)
}

// SetReadDeadline makes a pending and future Read return
// os.ErrDeadlineExceeded after t.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rd.set(t)
	return nil
}

// SetWriteDeadline bounds writes. A write that times out mid-frame leaves
// the stream unusable, as for TLS; close the Conn after such an error.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.pc.c.SetWriteDeadline(t) }

// Local is the selected pair's local candidate.
func (c *Conn) Local() candidate.Candidate { return c.local }

// Remote is the selected pair's remote candidate.
func (c *Conn) Remote() candidate.Candidate { return c.remote }

// Path is "direct" or "relay".
func (c *Conn) Path() string { return c.path }

// ConnectTime is how long the checks took: from the arrival of the peer's
// credentials (when checks can start) to the selection of this pair.
func (c *Conn) ConnectTime() time.Duration { return c.took }

// Agent is the agent that owns this connection.
func (c *Conn) Agent() *Agent { return c.a }

// deadline is a resettable timer whose channel is closed when it fires.
type deadline struct {
	mu     sync.Mutex // guards following
	timer  *time.Timer
	ch     chan struct{}
	passed bool
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.ch == nil || d.passed {
		d.ch = make(chan struct{})
		d.passed = false
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur <= 0 {
		close(d.ch)
		d.passed = true
	} else {
		ch := d.ch
		d.timer = time.AfterFunc(dur, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.ch == ch && !d.passed {
				close(ch)
				d.passed = true
			}
		})
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}
