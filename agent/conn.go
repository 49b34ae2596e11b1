package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/framing"
	"github.com/icetcp/icetcp/internal/wait"
)

// compatFrameSize is the largest frame written to a peer that did not say
// it reads bigger ones: pion/ice v2 reads frames into an 8,192-byte buffer
// and drops the connection on a larger one, although RFC 4571 allows
// 65,535.
const compatFrameSize = 8192

// ErrPacketTooLarge is returned by WritePacket for a packet that does not
// fit in one frame the peer reads.
var ErrPacketTooLarge = errors.New("agent: packet larger than the peer's frame size")

// Conn is the selected candidate pair's TCP connection. Application bytes
// travel in RFC 4571 frames (RFC 6544 §7.1) and share the connection with
// consent checks. Closing the Conn closes the Agent.
//
// Conn is a byte stream (Read, Write) and, for media, a packet connection
// (ReadPacket, WritePacket: one RTP or RTCP packet per frame). Use one or
// the other on each side; mixing Read and ReadPacket splits frames.
type Conn struct {
	a  *Agent // the agent that selected the first path
	pc *pconn // the first path
	// agent is the agent whose path the Conn uses now: a, or the agent
	// of an ICE restart that resumed the session.
	agent    atomic.Pointer[Agent]
	took     time.Duration // from the peer's credentials to selection
	maxFrame int           // largest frame the peer reads
	eos      bool          // end of stream travels in band (icetcp-eos)
	// sess carries the stream in session mode (icetcp-session): it moves
	// between paths. nil toward other peers.
	sess *session
	cur  atomic.Pointer[connPath] // the path in use, for LocalAddr, Path and the like

	readMu  sync.Mutex // serialises reads; guards following
	pending []byte
	pendBuf *[]byte

	writeMu    sync.Mutex // serialises writes so frames stay in order; guards writeEnded
	writeEnded bool
	closeOnce  sync.Once
	flushOnce  sync.Once // the first write waits for STUN answers queued before it (beforeFirstWrite)

	rd wait.Deadline
}

var _ net.Conn = (*Conn)(nil)

// connPath is the pair a Conn's data uses.
type connPath struct {
	pc            *pconn
	local, remote candidate.Candidate
	path          string // "direct" or "relay"
}

// path is the current pair's connection: the session's writer path, or
// the only one.
func (c *Conn) path() *pconn { return c.cur.Load().pc }

// Read reads application data. It returns io.EOF after the peer ended its
// stream (CloseWrite), an error wrapping ErrPeerVanished when an icetcp
// peer's connection ended without it (a crash or a kill), and one wrapping
// ErrConsentExpired when consent was lost.
func (c *Conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.pending) == 0 {
		bp, err := c.next(true)
		if err != nil {
			return 0, err
		}
		c.pendBuf, c.pending = bp, *bp
	}
	n := 0
	for {
		k := copy(p[n:], c.pending)
		n += k
		c.pending = c.pending[k:]
		if len(c.pending) > 0 {
			return n, nil // p is full
		}
		putFrame(c.pendBuf)
		c.pendBuf, c.pending = nil, nil
		if n == len(p) {
			return n, nil
		}
		// Small frames arrive many at a time: fill p with those already
		// queued rather than return one per call.
		bp, _ := c.next(false)
		if bp == nil {
			return n, nil
		}
		c.pendBuf, c.pending = bp, *bp
	}
}

// ReadPacket reads one whole frame into p and returns its length. A frame
// longer than p is discarded and io.ErrShortBuffer returned, as a datagram
// socket truncates. A frame partly consumed by Read is returned from
// where Read stopped.
func (c *Conn) ReadPacket(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	var frame []byte
	var bp *[]byte
	if len(c.pending) > 0 {
		frame, bp = c.pending, c.pendBuf
		c.pending, c.pendBuf = nil, nil
	} else {
		var err error
		if bp, err = c.next(true); err != nil {
			return 0, err
		}
		frame = *bp
	}
	defer putFrame(bp)
	if len(frame) > len(p) {
		return 0, fmt.Errorf("agent: read packet: %d-byte frame into %d bytes: %w", len(frame), len(p), io.ErrShortBuffer)
	}
	return copy(p, frame), nil
}

// next waits for the next frame (with !block: returns nil, nil when
// none is queued); called with readMu held.
func (c *Conn) next(block bool) (*[]byte, error) {
	if c.sess != nil {
		return c.sess.next(block)
	}
	for {
		bp, ended, err := c.pc.q.pop()
		if bp != nil {
			return bp, nil
		}
		if ended {
			return nil, c.readEndErr(err)
		}
		if !block {
			return nil, nil
		}
		select {
		case <-c.pc.q.readable:
		case <-c.rd.Done():
			return nil, os.ErrDeadlineExceeded
		}
	}
}

// readEndErr maps the end of the frames: a deliberate end of stream is
// io.EOF, a close of ours net.ErrClosed.
func (c *Conn) readEndErr(err error) error {
	switch {
	case err == nil:
		return io.EOF
	case errors.Is(err, net.ErrClosed) || errors.Is(err, ErrClosed):
		return net.ErrClosed
	default:
		return err
	}
}

// errPeerClosed is the end of a connection whose icetcp peer ended its
// stream in band and then closed.
var errPeerClosed = errors.New("agent: the peer closed the connection")

// peerClosed reports that the peer closed the connection cleanly: its FIN
// came after its end of stream.
func (c *Conn) peerClosed() bool { return c.pc.closedByPeer.Load() }

func (c *Conn) closedErr() error {
	switch {
	case c.pc.interrupted.Load():
		// What we write can no longer be read: the peer stopped.
		return ErrPeerInterrupted
	case c.pc.closedByPeer.Load():
		return fmt.Errorf("%w: %w", errPeerClosed, net.ErrClosed)
	}
	err := c.pc.closeErr()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, ErrClosed) {
		return net.ErrClosed
	}
	return err
}

// Write sends p in frames the peer reads (up to 65,535 bytes to icetcp
// peers, 8,192 to others).
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.writable(); err != nil {
		return 0, err
	}
	if c.sess != nil {
		return c.sess.write(p, false)
	}
	// One writev for all of p's frames: the payload is not copied.
	n, err := c.pc.fw.WriteFrames(p, c.maxFrame)
	c.pc.bytesOut.Add(uint64(n))
	if err != nil {
		if c.pc.closed() {
			return n, c.closedErr()
		}
		return n, fmt.Errorf("agent: write: %w", err)
	}
	return n, nil
}

// WritePacket sends p as one frame: one RTP or RTCP packet. A packet the
// peer cannot read in one frame is refused with ErrPacketTooLarge and
// nothing is sent.
func (c *Conn) WritePacket(p []byte) error {
	if len(p) > c.maxFrame {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrPacketTooLarge, len(p), c.maxFrame)
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.writable(); err != nil {
		return err
	}
	if c.sess != nil {
		_, err := c.sess.write(p, true)
		return err
	}
	return c.writeFrame(p)
}

// MaxPacketSize is the largest packet WritePacket sends: 65,535 bytes
// toward icetcp peers, 8,192 toward others.
func (c *Conn) MaxPacketSize() int { return c.maxFrame }

func (c *Conn) writable() error {
	// The answer to the peer's nomination is queued when the Conn is
	// handed out: application data must not overtake it, or the peer sees
	// data before its check was answered and drops the connection. A
	// standard agent's own check must be answered first too (stdpeer.go).
	c.flushOnce.Do(c.beforeFirstWrite)
	if c.sess == nil && c.pc.closed() {
		return c.closedErr()
	}
	if c.writeEnded {
		return fmt.Errorf("agent: write after CloseWrite: %w", net.ErrClosed)
	}
	return nil
}

func (c *Conn) writeFrame(p []byte) error {
	if err := c.pc.fw.WriteFrame(p); err != nil {
		if c.pc.closed() {
			return c.closedErr()
		}
		return fmt.Errorf("agent: write: %w", err)
	}
	c.pc.bytesOut.Add(uint64(len(p)))
	return nil
}

// CloseWrite ends our sending side: the peer reads io.EOF after the bytes
// written before. Toward an icetcp peer the end travels in band and the
// connection stays open for consent checks both ways, so a frozen or
// vanished peer is still detected and a crash cannot pass for an end.
//
// Standard agents cannot be told: libnice 0.1.21 and pion/ice v2 take a
// TCP FIN as the death of the whole connection, even after selection, and
// drop what they had not yet delivered. Toward them CloseWrite only stops
// our writes; the FIN goes with Close, so end a session with them by
// closing once both sides are done (consent keeps running meanwhile).
func (c *Conn) CloseWrite() error {
	c.writeMu.Lock()
	if c.writeEnded {
		c.writeMu.Unlock()
		return nil
	}
	c.writeEnded = true
	c.writeMu.Unlock()
	if c.sess != nil {
		// Our end of stream follows our data on whichever path has it.
		c.sess.closeWrite(endOfStream)
		return nil
	}
	if c.pc.closed() {
		if c.peerClosed() {
			// The peer ended its stream and closed: there is nobody left
			// to tell, as for a TCP shutdown after the peer's close.
			return nil
		}
		return c.closedErr()
	}
	if !c.eos {
		return nil
	}
	if err := c.pc.sendEOS(false); err != nil {
		return err
	}
	c.pc.flushSTUN() // written when CloseWrite returns, as a FIN would be
	if c.pc.closed() && !c.peerClosed() {
		return c.closedErr()
	}
	return nil
}

// lingerTimeout bounds how long Close waits for the peer to close too.
const lingerTimeout = 2 * time.Second

// Close closes the connection and its agent. Toward an icetcp peer that
// has not been told yet, Close first ends the stream in band, so the peer
// reads io.EOF, not ErrPeerVanished: only a crash looks like a crash.
//
// It closes without a reset: a TCP socket closed with bytes still
// arriving answers them with RST, and an RST makes the peer's kernel drop
// what the peer had not read yet. So Close sends FIN, discards what still
// arrives until the peer's FIN (at most lingerTimeout), then closes.
//
// In session mode Close waits, beyond the linger for as long as the
// session may resume a broken path (ResumeTimeout), until the peer has
// acknowledged every byte written, and returns an error saying how much
// it has not when that does not come.
func (c *Conn) Close() error {
	var lerr error
	c.closeOnce.Do(func() { lerr = c.linger(false) })
	err := c.Agent().Close()
	if lerr != nil {
		return lerr
	}
	return err
}

// abortLinger bounds how long Abort waits for the peer's FIN: an
// interrupted program must stop at once.
const abortLinger = 500 * time.Millisecond

// Abort closes the connection and its agent without ending the stream:
// toward an icetcp peer it says the stream was interrupted, and the peer's
// Read returns an error wrapping ErrPeerInterrupted after the bytes that
// arrived, never io.EOF. Use it when the sender stops before its end (a
// user's Ctrl-C, a local failure); a crash reads as ErrPeerVanished
// instead. Toward a standard agent it is Close. After CloseWrite the
// stream had ended: Abort only closes.
func (c *Conn) Abort() error {
	c.closeOnce.Do(func() { _ = c.linger(true) }) // interrupted: what the peer did not take is not a surprise
	return c.Agent().Close()
}

// linger ends the stream (see Close); in session mode it reports what the
// peer did not acknowledge.
func (c *Conn) linger(interrupted bool) (lerr error) {
	c.writeMu.Lock()
	ended := c.writeEnded
	c.writeEnded = true
	c.writeMu.Unlock()
	wait := lingerTimeout
	if interrupted {
		wait = abortLinger
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	cur := c.cur.Load()
	pc := cur.pc
	if c.sess != nil {
		end := endOfStream
		if interrupted {
			end = endInterrupted
		}
		if !ended {
			c.sess.closeWrite(end)
		}
		// What Write took may still be on its way, or lost with a path
		// the session is replacing: wait for the peer's ACK of all of it,
		// while a resumption may still bring it there.
		c.sess.ackNow()
		bound := wait
		if !interrupted {
			bound += c.a.cfg.ResumeTimeout
		}
		lingered := make(chan struct{})
		tm := time.AfterFunc(bound, func() { close(lingered) })
		lerr = c.sess.drained(lingered)
		tm.Stop()
		t.Reset(wait) // the linger for the peer's FIN starts now
		pc = c.path()
	} else if c.eos && !ended && !pc.closed() {
		_ = pc.sendEOS(interrupted)
	}
	if pc.closed() {
		return
	}
	if c.eos && cur.path == "relay" && !interrupted {
		// Through a relay our FIN waits for the peer's end of stream: a
		// relay that does not pass half-closes on (coturn) resets the
		// peer's leg on it and drops what it still holds for the peer.
		// Meanwhile what arrives is discarded, so the peer is never
		// blocked. (A direct connection carries the FIN as TCP does.)
	wait:
		for !pc.peerEOS.Load() {
			select {
			case <-pc.readDone:
				break wait
			case <-pc.q.readable:
				pc.q.drain()
			case <-t.C:
				break wait
			}
		}
	}
	flushed := make(chan struct{})
	go func() { pc.sendFIN(); close(flushed) }() // after the queued STUN (our end of stream)
	for done := false; !done; {
		select {
		case <-pc.readDone:
			done = true
		case <-pc.q.readable:
			pc.q.drain() // nobody will read it: let the reader reach the FIN
		case <-t.C:
			done = true
		}
	}
	pc.close(net.ErrClosed) // also ends a FIN still waiting behind a full socket
	<-flushed
	return lerr
}

// LocalAddr is the local TCP address of the selected connection (in
// session mode, of the path in use).
func (c *Conn) LocalAddr() net.Addr { return c.path().c.LocalAddr() }

// RemoteAddr is the peer's TCP address as seen by this host.
func (c *Conn) RemoteAddr() net.Addr { return c.path().c.RemoteAddr() }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.Set(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline makes a pending and future Read return
// os.ErrDeadlineExceeded after t.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rd.Set(t)
	return nil
}

// SetWriteDeadline bounds writes. A write that times out mid-frame leaves
// the stream unusable, as for TLS; close the Conn after such an error. In
// session mode Write only waits for room in the replay buffer, and the
// deadline bounds that wait; nothing is lost when it passes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.sess != nil {
		c.sess.wd.Set(t)
		return nil
	}
	return c.pc.c.SetWriteDeadline(t)
}

// Local is the selected pair's local candidate (in session mode, the
// current path's).
func (c *Conn) Local() candidate.Candidate { return c.cur.Load().local }

// Remote is the selected pair's remote candidate.
func (c *Conn) Remote() candidate.Candidate { return c.cur.Load().remote }

// Path is "direct" or "relay": the current path's.
func (c *Conn) Path() string { return c.cur.Load().path }

// ConnectTime is how long the checks took: from the arrival of the peer's
// credentials (when checks can start) to the selection of this pair.
func (c *Conn) ConnectTime() time.Duration { return c.took }

// Agent is the agent that owns this connection.
// After an ICE restart (Config.Redial) it is the restarted agent.
func (c *Conn) Agent() *Agent { return c.agent.Load() }

// frameSizeFor is the largest frame we write to a peer with features f.
func frameSizeFor(f features) int {
	if f.frames {
		return framing.MaxFrameSize
	}
	return compatFrameSize
}
