package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/framing"
)

// errDataBeforeAuth closes a connection whose peer sent application data
// before any check on it was authenticated.
var errDataBeforeAuth = errors.New("agent: application data before an authenticated check")

// errDataAfterEOS closes a connection whose peer sent application data
// after its in-band end of stream.
var errDataAfterEOS = errors.New("agent: application data after the peer's end of stream")

// errDataAfterEnd closes a connection whose peer sent application data
// after it moved its session's data elsewhere (END).
var errDataAfterEnd = errors.New("agent: application data after the peer's END on this path")

// maxQueuedSTUN bounds STUN messages waiting to be written on one
// connection (answers to a peer that floods checks are dropped beyond it).
const maxQueuedSTUN = 32

// pconn is one TCP connection used for checks and, if its pair is selected,
// for application data. Its reader goroutine authenticates STUN messages
// (it needs only the passwords, not agent state), forwards them to the agent
// loop and queues application frames for Conn.Read. STUN messages are
// written by a goroutine that runs only while some are queued, so the loop
// never waits behind application writes.
type pconn struct {
	id      uint64
	c       net.Conn
	fr      *framing.Reader
	fw      *framing.Writer
	inbound bool
	local   candidate.Candidate // the local candidate whose socket this is
	remote  netip.AddrPort
	spawn   func(func()) // starts a goroutine the agent waits for
	log     func(format string, args ...any)
	q       *frameQueue

	authenticated atomic.Bool
	eosMode       atomic.Bool   // end of stream travels in band: a FIN without it means the peer vanished
	answered      atomic.Bool   // we answered a check of the peer on this connection: it knows the path works
	parked        atomic.Bool   // left unused by the selection but kept open (closeOrPark): its data is dropped
	reset         atomic.Bool   // the reader's EOF followed an RST, not the peer's FIN (sawReset)
	left          atomic.Bool   // the session moved off this path: its data is dropped (session.moveTo)
	paused        atomic.Bool   // the reader waits (pause)
	unpaused      chan struct{} // made by the first pause, before paused is set: few connections ever pause

	wmu       sync.Mutex // guards the fields up to wcond
	stunQ     []*stun.Message
	writing   bool // the STUN writer goroutine runs
	finSent   bool // our FIN is out: nothing more may be written
	noChecks  bool // our application data went to a standard agent: no check of ours follows it (stdpeer.go)
	stunDrops int
	wcond     *sync.Cond // signalled when the STUN queue empties

	answerOut  chan struct{} // closed once an answer of ours is written (or nothing more can be)
	answerOnce sync.Once

	done     chan struct{}
	readDone chan struct{} // closed when the reader has stopped
	peerEOS  atomic.Bool   // the peer's in-band end of stream arrived
	// closedByPeer: its FIN followed its end of stream (a clean close).
	closedByPeer atomic.Bool
	interrupted  atomic.Bool // the peer interrupted its stream (Abort)
	closeOnce    sync.Once
	err          error // why the connection was closed; written before done is closed
	bytesIn      atomic.Uint64
	bytesOut     atomic.Uint64
	// atDirect is bytesIn+bytesOut, plus one, when a direct pair validated
	// while this relayed connection carried the session; zero before.
	atDirect atomic.Uint64

	onAuth func() // called once when the first check is authenticated

	pair  *pair  // owned by the agent loop
	owner *Agent // whose credentials sign what we send on it

	// Session mode (session.go). started and startOff are the peer's
	// START on this connection, set by the reader before the data after
	// it; pathEnded its END. sessHeard and sessFirstAck (the peer's first
	// ACK here) are guarded by the session's mutex. viaRelay is set by
	// the loop when the connection becomes the session's path.
	started      atomic.Bool
	startOff     atomic.Uint64
	pathEnded    atomic.Bool
	sidesLeft    atomic.Int32 // sides that left this path: our FIN waits for both (leftBy)
	sessHeard    bool
	sessFirstAck uint64
	viaRelay     atomic.Bool
	drainBy      time.Time // owned by the loop: a path moved from closes then
}

// sendSession queues a session indication (ACK, START, END) signed with
// the owner's credentials.
func (pc *pconn) sendSession(kind byte, off uint64) {
	a := pc.owner
	pwd := a.remotePwd.Load()
	if pwd == nil {
		return
	}
	m, err := buildSession(a.creds.ufrag, a.peer.ufrag, *pwd, kind, off)
	if err != nil {
		pc.log("%v", err)
		return
	}
	pc.sendSTUN(m)
}

func newPConn(id uint64, c net.Conn, fr *framing.Reader, inbound bool, local candidate.Candidate, spawn func(func()), log func(string, ...any)) *pconn {
	if fr == nil {
		fr = framing.NewReader(c)
	}
	pc := &pconn{
		id: id, c: c, fr: fr, fw: framing.NewWriter(c), inbound: inbound, local: local,
		remote: addrPortOf(c.RemoteAddr()), spawn: spawn, log: log, q: newFrameQueue(),
		done: make(chan struct{}), readDone: make(chan struct{}), answerOut: make(chan struct{}),
	}
	pc.wcond = sync.NewCond(&pc.wmu)
	return pc
}

// sendSTUN queues m for the connection's STUN writer; it never blocks.
func (pc *pconn) sendSTUN(m *stun.Message) {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	switch {
	case pc.closed() || pc.finSent:
		return
	case len(pc.stunQ) >= maxQueuedSTUN:
		pc.stunDrops++
		return
	case pc.noChecks && m.Type.Class == stun.ClassRequest:
		// Behind our application data a standard agent may take it for
		// data (stdpeer.go). Only a consent check racing the first write
		// gets here: consent stops then.
		return
	}
	pc.stunQ = append(pc.stunQ, m)
	if !pc.writing {
		pc.writing = true
		pc.spawn(pc.writeLoop)
	}
}

// writeLoop writes queued STUN messages, then ends.
func (pc *pconn) writeLoop() {
	for {
		pc.wmu.Lock()
		if len(pc.stunQ) == 0 {
			pc.writing = false
			pc.wcond.Broadcast()
			pc.wmu.Unlock()
			return
		}
		m := pc.stunQ[0]
		pc.stunQ[0] = nil
		pc.stunQ = pc.stunQ[1:]
		pc.wmu.Unlock()
		if err := pc.fw.WriteFrame(m.Raw); err != nil {
			// The writer's error is sticky: nothing more can be sent. The
			// connection is not closed here: what the peer sent before it
			// went away is still read, and the reader reports the end.
			pc.log("agent: write STUN to %s: %v", pc.remote, err)
			pc.wmu.Lock()
			pc.stunQ = nil
			pc.wmu.Unlock()
			pc.answerOnce.Do(func() { close(pc.answerOut) })
			continue
		}
		if m.Type.Class == stun.ClassSuccessResponse {
			pc.answerOnce.Do(func() { close(pc.answerOut) })
		}
	}
}

// awaitAnswer waits until an answer of ours to a check of the peer has
// been written on the connection, at most d, and reports how long it
// waited and whether the answer is out.
func (pc *pconn) awaitAnswer(d time.Duration) (time.Duration, bool) {
	select {
	case <-pc.answerOut:
		return 0, true
	default:
	}
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-pc.answerOut:
		return time.Since(start), true
	case <-pc.done:
		return time.Since(start), false
	case <-t.C:
		return d, false
	}
}

// endChecks stops our checks on the connection: from now on only answers
// are queued. Checks queued before are still written (the caller flushes
// them before its data): a standard controlling agent waits for the one we
// send on selection.
func (pc *pconn) endChecks() {
	pc.wmu.Lock()
	pc.noChecks = true
	pc.wmu.Unlock()
}

// checksEnded reports whether endChecks ran: consent can no longer be
// checked on this connection.
func (pc *pconn) checksEnded() bool {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	return pc.noChecks
}

// flushSTUN waits until the STUN queue is empty (or the connection closed).
func (pc *pconn) flushSTUN() {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	for pc.writing {
		pc.wcond.Wait()
	}
}

// sendFIN waits for queued STUN writes (our end of stream, a nomination
// answer), then shuts down the sending side.
func (pc *pconn) sendFIN() error {
	pc.wmu.Lock()
	for pc.writing {
		pc.wcond.Wait()
	}
	pc.finSent = true
	pc.wmu.Unlock()
	if tc, ok := pc.c.(interface{ CloseWrite() error }); ok {
		return tc.CloseWrite()
	}
	return errors.ErrUnsupported
}

// leftBy counts a side that left a path the session moved from: the peer
// (its END came) or we (our END is out). Our FIN follows once both did:
// sent when only we had left, it reached a peer still on the path (its
// move a round trip away, the nomination's answer on the new path) as an
// end without END, which on a relayed path reads as the relay's death,
// and the peer resumed where it should have moved. The controlling side
// closes the path once it moved (movePath), so the FIN is often not
// needed at all.
func (pc *pconn) leftBy() {
	if pc.sidesLeft.Add(1) == 2 {
		pc.spawn(func() { _ = pc.sendFIN() })
	}
}

// sentFIN reports whether our FIN is out: the reader's error is then the
// consequence of our own shutdown (Conn.Close lingers on another goroutine).
func (pc *pconn) sentFIN() bool {
	pc.wmu.Lock()
	defer pc.wmu.Unlock()
	return pc.finSent
}

// close closes the connection once and records why.
func (pc *pconn) close(err error) {
	pc.closeOnce.Do(func() {
		if err == nil {
			err = net.ErrClosed
		}
		pc.err = err
		close(pc.done)
		_ = pc.c.Close()
		pc.wmu.Lock()
		pc.wcond.Broadcast()
		pc.wmu.Unlock()
	})
}

func (pc *pconn) closed() bool {
	select {
	case <-pc.done:
		return true
	default:
		return false
	}
}

// closeErr is the reason given by close; valid once done is closed.
func (pc *pconn) closeErr() error {
	<-pc.done
	return pc.err
}

// readerConfig is what the reader needs from the agent: immutable
// credentials, the remote password once known, and the loop's inbox.
type readerConfig struct {
	localUfrag, localPwd string
	remotePwd            *atomic.Pointer[string]
	firstTimeout         time.Duration
	first                []byte // a frame already read (by a Mux)
	onSTUN               func(pc *pconn, m *stun.Message)
	onEnd                func(pc *pconn, err error)
	onAck                func(pc *pconn, r uint64) // a session's ACK
	log                  func(format string, args ...any)
}

// readLoop runs until the connection fails or closes. STUN messages that
// fail authentication are answered with 401 and, before the connection is
// authenticated, close it.
func (pc *pconn) readLoop(rc readerConfig) {
	var err error
	var held *[]byte // the buffer the current frame was read into
	peerEOS := false
	defer func() {
		if peerEOS && (err == nil || errors.Is(err, io.EOF)) {
			pc.closedByPeer.Store(true)
		}
		if (err == nil || errors.Is(err, io.EOF)) && !pc.closed() {
			pc.reset.Store(pc.sawReset()) // while the socket is still open
		}
		pc.q.end(pc.endErr(err))
		close(pc.readDone)
		rc.onEnd(pc, err)
	}()
	if pc.inbound && rc.first == nil {
		_ = pc.c.SetReadDeadline(time.Now().Add(rc.firstTimeout))
	}
	first := rc.first
	rc.first = nil // the frame's buffer is dropped once read, not held by rc as long as the connection lives
	alloc := func(n int) []byte { bp := getFrame(n); held = bp; return *bp }
	for {
		for pc.paused.Load() && !pc.left.Load() {
			select {
			case <-pc.unpaused:
			case <-pc.done:
				err = pc.closeErr()
				return
			}
		}
		if pc.left.Load() {
			// The session left this path: what still comes is not read
			// (the peer sends it again on the new path), so that the
			// relay behind it stops once its buffers are full. The path
			// ends when closed (session.onAck, or the drain's timeout).
			<-pc.done
			err = pc.closeErr()
			return
		}
		var frame []byte
		held = nil
		if first != nil {
			frame, first = first, nil
		} else if frame, err = pc.fr.NextInto(alloc); err != nil {
			if held != nil {
				putFrame(held)
			}
			if pc.closed() {
				err = pc.closeErr()
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() && !pc.authenticated.Load() {
				err = fmt.Errorf("agent: no authenticated check from %s within %v: %w", pc.remote, rc.firstTimeout, err)
			}
			return
		}
		if framing.IsSTUN(frame) {
			m, derr := decodeSTUN(frame) // copies the frame
			if derr == nil {
				putFrame(held)
				end, herr := pc.handleSTUN(rc, m)
				if herr != nil {
					err = herr
					pc.close(err)
					return
				}
				if end != endNone && !peerEOS {
					peerEOS = true
					pc.peerEOS.Store(true)
					if end == endInterrupted {
						pc.interrupted.Store(true)
						pc.q.end(fmt.Errorf("%w after %d bytes", ErrPeerInterrupted, pc.bytesIn.Load()))
					} else {
						pc.q.end(nil)
					}
				}
				continue
			}
			if !pc.authenticated.Load() {
				putFrame(held)
				err = derr
				pc.close(err)
				return
			}
			// After authentication a frame that merely looks like STUN
			// but has no valid FINGERPRINT is application data.
		}
		switch {
		case !pc.authenticated.Load():
			err = errDataBeforeAuth
		case peerEOS:
			err = errDataAfterEOS
		case pc.pathEnded.Load():
			err = errDataAfterEnd
		}
		if err != nil {
			putFrame(held)
			pc.close(err)
			return
		}
		if pc.parked.Load() || pc.left.Load() {
			// No reader takes it: a parked connection, or a path the
			// session left (the peer sends it again on the new one).
			pc.bytesIn.Add(uint64(len(frame)))
			putFrame(held)
			continue
		}
		if err = pc.waitRoom(); err != nil {
			putFrame(held)
			return
		}
		if held == nil { // the Mux's first frame: not in a buffer of ours
			held = getFrame(len(frame))
			copy(*held, frame)
		}
		pc.q.push(held)
		pc.bytesIn.Add(uint64(len(frame)))
	}
}

// pause stops (on) or resumes the reading of the connection: a session
// that holds the relay for a move (session.hold) leaves the peer's data in
// it, and the peer sends that again on the new path. The frame being read
// when it stops is still taken.
func (pc *pconn) pause(on bool) {
	if on && pc.unpaused == nil {
		// The reader reads the field only after it sees paused, which is
		// stored after this; pause runs under the session's mutex.
		pc.unpaused = make(chan struct{}, 1)
	}
	pc.paused.Store(on)
	if !on {
		pokeChan(pc.unpaused)
	}
}

// waitRoom blocks while the application is behind by maxQueuedBytes.
func (pc *pconn) waitRoom() error {
	for pc.q.full() {
		select {
		case <-pc.q.writable:
		case <-pc.done:
			return pc.closeErr()
		}
	}
	return nil
}

// sawReset reports that the connection, whose reader just read EOF, was
// reset rather than closed by the peer: a write of ours took the RST's
// ECONNRESET, or the kernel says so (resetByPeer). A NAT that lost its
// state resets a path the peer is still on; a peer that exits closes it.
func (pc *pconn) sawReset() bool {
	if errors.Is(pc.fw.Err(), syscall.ECONNRESET) {
		return true
	}
	c := pc.c
	for {
		switch cc := c.(type) {
		case *net.TCPConn:
			return resetByPeer(cc)
		case interface{ NetConn() net.Conn }:
			c = cc.NetConn()
		default:
			return false
		}
	}
}

// endErr is what Conn.Read reports when the reader stopped with err: a
// clean FIN is the end of the stream, unless the peer promised an in-band
// end of stream, in which case it vanished.
func (pc *pconn) endErr(err error) error {
	switch {
	case err == nil || errors.Is(err, io.EOF):
		if pc.eosMode.Load() {
			return fmt.Errorf("%w after %d bytes", ErrPeerVanished, pc.bytesIn.Load())
		}
		return nil
	case pc.closed() || pc.sentFIN():
		return pc.closeErr()
	default:
		return fmt.Errorf("agent: read: %w", err)
	}
}

// handleSTUN authenticates m and hands it to the agent. end reports the
// peer's in-band end of stream or its interruption. A non-nil error
// closes the connection.
func (pc *pconn) handleSTUN(rc readerConfig, m *stun.Message) (end streamEnd, err error) {
	switch m.Type.Class {
	case stun.ClassRequest:
		if err := authRequest(m, rc.localUfrag, rc.localPwd); err != nil {
			code := stun.CodeUnauthorized
			if !errors.Is(err, ErrUnauthenticated) {
				code = stun.CodeBadRequest
			}
			rc.log("rejected check from %s: %v", pc.remote, err)
			resp, berr := buildError(m, code, "")
			if pc.authenticated.Load() {
				// A bad message on a good connection is answered through
				// the writer queue (it may be busy with application data)
				// and dropped, not fatal.
				if berr == nil {
					pc.sendSTUN(resp)
				}
				return endNone, nil
			}
			// Nothing but checks has been written on an unauthenticated
			// connection, so this write cannot wait behind application
			// data; it is bounded anyway.
			if berr == nil {
				_ = pc.c.SetWriteDeadline(time.Now().Add(time.Second))
				_ = pc.fw.WriteFrame(resp.Raw)
			}
			return endNone, err
		}
		pc.markAuthenticated()
	case stun.ClassSuccessResponse, stun.ClassErrorResponse:
		pwd := rc.remotePwd.Load()
		if pwd == nil {
			return endNone, nil // a response to nothing we sent
		}
		if err := stun.NewShortTermIntegrity(*pwd).Check(m); err != nil {
			if m.Type.Class == stun.ClassErrorResponse && errorCode(m) == stun.CodeUnauthorized {
				// 401 carries no integrity: the peer could not verify us.
				rc.onSTUN(pc, m)
				return endNone, nil
			}
			return endNone, fmt.Errorf("%w: response from %s: %w", ErrUnauthenticated, pc.remote, err)
		}
		pc.markAuthenticated()
	case stun.ClassIndication:
		// Keepalives need no answer; our end of stream and the session's
		// indications are signed like a request, so only the peer can end
		// or move its stream.
		if kind, off, ok, serr := sessionOf(m); ok {
			pc.onSession(rc, m, kind, off, serr)
			return endNone, nil
		}
		end := endOf(m)
		if end == endNone {
			return endNone, nil
		}
		if err := authRequest(m, rc.localUfrag, rc.localPwd); err != nil {
			rc.log("ignored an unauthenticated end of stream from %s: %v", pc.remote, err)
			return endNone, nil
		}
		if !pc.authenticated.Load() {
			return endNone, nil
		}
		return end, nil
	default:
		return endNone, nil
	}
	rc.onSTUN(pc, m)
	return endNone, nil
}

// onSession takes an authenticated session indication: START and END
// change how the frames after them are read, so the reader applies them
// in order; an ACK goes to the session.
func (pc *pconn) onSession(rc readerConfig, m *stun.Message, kind byte, off uint64, err error) {
	if err == nil {
		err = authRequest(m, rc.localUfrag, rc.localPwd)
	}
	if err != nil || !pc.authenticated.Load() {
		rc.log("ignored a session indication from %s: %v", pc.remote, err)
		return
	}
	switch kind {
	case sessStart:
		if !pc.started.Load() {
			pc.startOff.Store(off)
			pc.started.Store(true)
		}
	case sessEnd:
		if !pc.pathEnded.Swap(true) {
			pc.leftBy()
		}
		pc.q.end(errPathEnd)
	case sessAck:
		if rc.onAck != nil {
			rc.onAck(pc, off)
		}
	}
}

// markDirectValid notes, on the session's relayed connection, that a
// direct pair validated: what it carries from now on is the upgrade's
// cost (SessionStats, PathStats.AfterDirect).
func (pc *pconn) markDirectValid() {
	pc.atDirect.CompareAndSwap(0, pc.bytesIn.Load()+pc.bytesOut.Load()+1)
}

// afterDirect is what the connection carried since markDirectValid.
func (pc *pconn) afterDirect() uint64 {
	at := pc.atDirect.Load()
	if at == 0 {
		return 0
	}
	return pc.bytesIn.Load() + pc.bytesOut.Load() - (at - 1)
}

func (pc *pconn) markAuthenticated() {
	if !pc.authenticated.CompareAndSwap(false, true) {
		return
	}
	if pc.inbound {
		_ = pc.c.SetReadDeadline(time.Time{})
	}
	if pc.onAuth != nil {
		pc.onAuth()
	}
}
