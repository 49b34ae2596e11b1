package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icetcp/icetcp/internal/wait"
)

// The session layer (icetcp-session, negotiated: standard agents see plain
// RFC 6544 frames). Between two icetcp agents each side's stream is
// numbered by byte offset, and a side keeps what it sent until the peer
// acknowledges it, so that when the session moves to another connection (a
// direct pair found after the relay, or a new path after the old one
// broke) the peer's stream picks up exactly where it stopped: no byte
// lost, none twice, none out of order.
//
// Data frames carry no header, so the data path costs what it did: a
// frame's offset is where its connection's data started plus the bytes
// before it there. Three signed STUN indications say the rest:
//
//   - ACK(r): I have taken r bytes of your stream. Sent as the reader
//     consumes (every max/8 bytes, and ackDelay after it caught up), and
//     first thing on a new path, where it tells the writer where to resume.
//   - START(x): the data that follows on this connection begins at offset
//     x of my stream (the writer's answer to the ACK on a new path).
//   - END(y): no more data of mine on this connection, which carried my
//     stream up to y. The reader reads the old path up to END (or its
//     break), then the new one, dropping what the new path repeats.
//
// The agent loop decides when to move (move.go); the session does the
// moving: moveTo starts the new path on both sides of the stream.

// Session wire kinds (the SESSION attribute: a kind byte, an 8-byte offset).
const (
	sessAck   byte = 1
	sessStart byte = 2
	sessEnd   byte = 3
)

// errPathEnd ends a path's frame queue at the peer's END: its data
// continues on the next path.
var errPathEnd = errors.New("agent: the peer moved its data to another path")

// defaultReplayBuffer bounds what a session keeps unacknowledged: Write
// waits beyond it. It is also the most a session has in flight, so it
// bounds throughput to replay/RTT (4 MiB at 40 ms: 100 MB/s).
const defaultReplayBuffer = 4 << 20

// ackDelay is how long a reader that caught up waits before it
// acknowledges what it took: smaller reads are acknowledged together.
const ackDelay = 10 * time.Millisecond

// maxBatch and maxBatchBytes bound the records one writev carries: a
// move waits for the write in progress on the old path, and what it
// still puts there after the move is carried for nothing.
const (
	maxBatch      = 64
	maxBatchBytes = 256 << 10
)

// relayRecord bounds records, and the writes that carry them, while the
// session rides a relay and searches for a direct path: a write in
// progress when a direct pair validates still goes out whole over the
// relay, and what the relay carries after that is the upgrade's cost
// (PathStats.AfterDirect). A record at a time costs a relay nothing: it
// moves bytes at a fraction of a direct connection's speed.
const relayRecord = 16 << 10

// record is one frame of our stream, kept until the peer acknowledges it.
type record struct {
	off uint64
	bp  *[]byte // from getFrame
}

func (r record) end() uint64 { return r.off + uint64(len(*r.bp)) }

// session is a Conn's stream state in session mode. Write only copies
// into the replay buffer; a writer goroutine, running while there is
// something to send, puts records on the path.
type session struct {
	c   *Conn
	max int     // replay buffer bound
	id  [8]byte // names the session to a restarted agent (featResume)
	wd  wait.Deadline

	mu       sync.Mutex    // guards following
	changed  chan struct{} // closed and replaced on every change a waiter waits for
	recs     []record      // [acked, sent), in order
	sent     uint64        // our stream's end so far
	acked    uint64        // what the peer took
	written  uint64        // records up to here went on out
	buffered int           // bytes in recs
	pinned   int           // writes in flight: acknowledged records stay until they end
	writing  bool          // the writer goroutine runs
	out      *pconn        // where our data goes
	ready    bool          // out may carry records: its START is out
	end      streamEnd     // our end of stream, once CloseWrite or Abort ran
	eosOn    *pconn        // the path our end of stream went on
	lastAck  uint64        // what our last ACK said
	ackT     *time.Timer
	ins      []*pconn // paths to read after in, in order
	left     []*pconn // paths we moved off, open until the peer left them too
	failed   error
	moves    int
	paths    []pathRec // the paths used, in order
	held     *pconn    // this path is neither written nor read (hold), until a move or holdT
	holdGen  int       // which hold holdT ends
	holdT    *time.Timer

	// upgrading: a search for a direct path runs (relayRecord).
	upgrading atomic.Bool

	// The read side, under Conn.readMu.
	in      *pconn
	inOff   uint64 // offset of the next frame on in
	inKnown bool   // inOff is set (in's START came, or in is the first path)
	recvd   atomic.Uint64
}

// newSession starts a session on its first path. Every path, the first
// too, begins with our ACK and our START: the two sides may not agree on
// which path came first (the controlled side can commit to the relay
// and take a direct nomination on top before the controlling side,
// whose answers arrive on two connections, sees the relay's), and the
// reader of each side only trusts a START.
func newSession(c *Conn, pc *pconn, max int) *session {
	s := &session{c: c, max: max, out: pc, in: pc, changed: make(chan struct{})}
	pc.sendSession(sessAck, 0)
	pc.sendSession(sessStart, 0)
	pc.spawn(func() {
		pc.flushSTUN() // START before the data
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.out == pc && !s.ready {
			s.ready = true
			s.startWriterLocked()
			s.broadcastLocked()
		}
	})
	return s
}

// broadcastLocked wakes every waiter.
func (s *session) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// write appends p to our stream, as records of at most maxFrame bytes (one
// record when packet), and starts the writer. It waits while the replay
// buffer is full, at most until the write deadline. Called with
// Conn.writeMu held.
func (s *session) write(p []byte, packet bool) (int, error) {
	size, most := len(p), s.c.maxFrame
	if s.upgrading.Load() {
		most = min(most, relayRecord)
	}
	if !packet && len(p) > most {
		k := (len(p) + most - 1) / most
		size = (len(p) + k - 1) / k // equal frames, as WriteFrames cuts them
	}
	n := 0
	for n < len(p) || (packet && n == 0) {
		k := min(size, len(p)-n)
		if err := s.add(p[n : n+k]); err != nil {
			return n, err
		}
		n += k
		if packet {
			break
		}
	}
	return n, nil
}

// add copies one record into the replay buffer, waiting for room.
func (s *session) add(p []byte) error {
	for {
		s.mu.Lock()
		if s.failed != nil {
			err := s.failed
			s.mu.Unlock()
			if s.c.path().interrupted.Load() {
				return ErrPeerInterrupted // what we write can no longer be read: the peer stopped
			}
			return err
		}
		if s.buffered == 0 || s.buffered+len(p) <= s.max {
			bp := getFrame(len(p))
			copy(*bp, p)
			s.recs = append(s.recs, record{off: s.sent, bp: bp})
			s.sent += uint64(len(p))
			s.buffered += len(p)
			s.startWriterLocked()
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.wd.Done():
			return os.ErrDeadlineExceeded
		}
	}
}

// startWriterLocked starts the writer if there is something it may send.
func (s *session) startWriterLocked() {
	if s.writing || !s.ready || s.failed != nil || s.held == s.out || (s.written >= s.sent && !s.eosDueLocked()) {
		return
	}
	s.writing = true
	out := s.out
	out.spawn(func() { s.writeLoop(out) })
}

// eosDueLocked reports an end of stream not yet sent on out.
func (s *session) eosDueLocked() bool { return s.end != endNone && s.eosOn != s.out }

// writeLoop sends records until out has all of them (or out changes or
// breaks), then our end of stream if it was asked for.
func (s *session) writeLoop(out *pconn) {
	var batch [][]byte
	for {
		s.mu.Lock()
		if s.failed != nil || !s.ready || s.out != out || s.held == out {
			s.stopWriterLocked()
			return
		}
		batch = batch[:0]
		to, bytes, most := s.written, 0, maxBatchBytes
		if s.upgrading.Load() {
			most = relayRecord
		}
		for _, r := range s.recs {
			if r.end() <= to {
				continue
			}
			if len(batch) == maxBatch || bytes >= most {
				break
			}
			b := *r.bp
			if r.off < to { // resuming inside a record: a packet may not be split, but never is (ACKs count whole frames)
				b = b[to-r.off:]
			}
			batch = append(batch, b)
			bytes += len(b)
			to = r.end()
		}
		if len(batch) == 0 {
			if s.eosDueLocked() {
				s.eosOn = out
				interrupted := s.end == endInterrupted
				s.mu.Unlock()
				_ = out.sendEOS(interrupted)
				continue
			}
			s.stopWriterLocked()
			return
		}
		s.pinned++
		s.mu.Unlock()
		n, err := out.fw.WriteEach(batch)
		clear(batch)
		out.bytesOut.Add(uint64(n))
		s.mu.Lock()
		s.pinned--
		if err == nil && s.out == out && to > s.written {
			s.written = to
		}
		s.trimLocked()
		s.broadcastLocked() // room for add, a finished write for release
		if err != nil {
			// The path broke: the records stay for the next one, which
			// the agent finds (its reader saw the break too) or fails.
			s.stopWriterLocked()
			out.log("agent: session: write on %s: %v (the records stay for the next path)", out.remote, err)
			return
		}
		s.mu.Unlock()
	}
}

// stopWriterLocked ends the writer and unlocks.
func (s *session) stopWriterLocked() {
	s.writing = false
	s.broadcastLocked()
	s.mu.Unlock()
}

// onAck takes the peer's ACK(r) from path pc: what it acknowledges leaves
// the replay buffer; the first on a path answers our move to it.
func (s *session) onAck(pc *pconn, r uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r > s.sent {
		r = s.sent // a peer that claims more than we sent is wrong: resume from what we know it can have
	}
	if !pc.sessHeard {
		pc.sessHeard, pc.sessFirstAck = true, r
		if !pc.left.Load() {
			// The peer's first ACK on a path comes from its move there:
			// it has left the paths we left, and nothing on them is of
			// use to either side. Closing them ends what a relay still
			// carries toward us.
			for _, old := range s.left {
				if old != pc {
					old.close(errMovedOn)
				}
			}
			s.left = nil
		}
	}
	if r > s.acked {
		s.acked = r
		s.trimLocked()
	}
	s.broadcastLocked()
}

// trimLocked frees acknowledged records, unless a write still reads them.
func (s *session) trimLocked() {
	if s.pinned > 0 {
		return
	}
	i := 0
	for ; i < len(s.recs) && s.recs[i].end() <= s.acked; i++ {
		s.buffered -= len(*s.recs[i].bp)
		putFrame(s.recs[i].bp)
		s.recs[i] = record{}
	}
	s.recs = s.recs[i:]
	if len(s.recs) == 0 {
		s.recs = nil // an idle session holds no record list
	}
}

// next returns the next frame of the peer's stream, in order and once,
// across paths; nil, nil when !block and none is there. Called with
// Conn.readMu held.
func (s *session) next(block bool) (*[]byte, error) {
	for {
		in := s.in
		bp, ended, err := in.q.pop()
		if bp != nil {
			if !s.inKnown {
				if !in.started.Load() {
					putFrame(bp) // the reader rejects data before START: cannot happen
					return nil, s.fail(fmt.Errorf("agent: session: data on %s before its START", in.remote))
				}
				s.inOff, s.inKnown = in.startOff.Load(), true
			}
			off, n := s.inOff, uint64(len(*bp))
			s.inOff += n
			r := s.recvd.Load()
			switch {
			case off+n <= r:
				putFrame(bp) // the new path repeats what we have
				continue
			case off > r:
				putFrame(bp)
				return nil, s.fail(fmt.Errorf("agent: session: the peer's stream jumped from %d to %d", r, off))
			case off < r:
				*bp = (*bp)[r-off:]
			}
			s.recvd.Store(off + n)
			s.tookData()
			return bp, nil
		}
		if ended && !s.movable(in, err) {
			// The peer's end of stream, or its interruption: the stream
			// ends here, whichever path carried it. The peer's Close
			// waits for our ACK of its last bytes.
			s.ackNow()
			return nil, s.c.readEndErr(err)
		}
		if ended {
			if nextIn := s.nextIn(in); nextIn != nil {
				s.mu.Lock() // the ACK timer reads in under mu
				s.in = nextIn
				s.mu.Unlock()
				s.inKnown = false
				continue
			}
		}
		s.mu.Lock()
		failed, ch := s.failed, s.changed
		s.mu.Unlock()
		if failed != nil {
			if errors.Is(failed, errPathLost) {
				return nil, failed // whatever broke the path, it is not our Close
			}
			return nil, s.c.readEndErr(failed)
		}
		if !block {
			return nil, nil
		}
		select {
		case <-in.q.readable:
		case <-ch:
		case <-s.c.rd.Done():
			return nil, os.ErrDeadlineExceeded
		}
	}
}

// movable reports an end of a path the session survives: the peer's END,
// or the connection's break (the peer may well be alive elsewhere). Not
// its end of stream or interruption, nor a FIN without end of stream on a
// direct connection: only the peer's host sends that, when the peer died.
// A relay that died sends it too, an EOF that followed an RST (a NAT
// that lost its state) is a break (pconn.sawReset), and so is the FIN of
// a path the peer never started its data on: the peer closed a pair it
// did not move to (two moves crossed: we took a nomination the peer then
// replaced by another), not its stream.
func (s *session) movable(pc *pconn, err error) bool {
	switch {
	case err == nil, errors.Is(err, ErrPeerInterrupted):
		return false
	case errors.Is(err, ErrPeerVanished):
		return pc.viaRelay.Load() || pc.reset.Load() || !pc.started.Load()
	}
	return true
}

// nextIn is the path after in, once the agent named one.
func (s *session) nextIn(in *pconn) *pconn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.ins) > 0 {
		pc := s.ins[0]
		s.ins = s.ins[1:]
		if pc != in {
			return pc
		}
	}
	s.ins = nil
	return nil
}

// tookData acknowledges what the reader took: at once every max/8 bytes,
// else ackDelay after the last take.
func (s *session) tookData() {
	r := s.recvd.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if r-s.lastAck >= uint64(s.max/8) {
		s.sendAckLocked(r)
		return
	}
	if s.ackT == nil && s.failed == nil {
		s.ackT = time.AfterFunc(ackDelay, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.ackT = nil
			s.sendAckLocked(s.recvd.Load())
		})
	}
}

// sendAckLocked acknowledges r on the path we read: the peer reads STUN
// on every path, and this one works.
func (s *session) sendAckLocked(r uint64) {
	if r == s.lastAck || s.failed != nil {
		return
	}
	s.lastAck = r
	pc := s.in
	if pc.closed() {
		pc = s.out
	}
	pc.sendSession(sessAck, r)
}

// hold stops our use of pc, the relayed path, for at most d: a direct
// pair validated, and the move to it (the controlling side's nomination)
// is at most a round trip or two away. Our writes wait, and our reads: the
// peer's data stays in the relay, and the peer sends it again on the new
// path from our ACK there. Nothing waits is lost; only if no move comes
// within d does the relay carry it after all. The agent loop calls it.
func (s *session) hold(pc *pconn, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out != pc || s.failed != nil {
		return
	}
	s.endHoldLocked() // a hold before this one
	s.held = pc
	pc.pause(true)
	gen := s.holdGen
	s.holdT = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.holdGen == gen {
			s.endHoldLocked()
			s.startWriterLocked()
		}
	})
}

// endHoldLocked lets the held path's reader go on; the caller starts the
// writer where it may write.
func (s *session) endHoldLocked() {
	if s.held != nil {
		s.held.pause(false)
	}
	s.held = nil
	s.holdGen++
	if s.holdT != nil {
		s.holdT.Stop()
		s.holdT = nil
	}
}

// moveTo makes pc the session's path: the peer's data continues on it
// after its END on the old path (or the old path's break), and ours once
// the peer said where (its first ACK on pc). Run on the agent loop; the
// writer's part runs on a goroutine of its own.
func (s *session) moveTo(pc *pconn) {
	s.mu.Lock()
	// The paths we read until now are left at once, their queued data
	// dropped: the peer resumes on pc from our ACK below, which counts
	// only what the application took, so whatever they still hold comes
	// again on pc (and the reader drops what it repeats). A relay stops
	// carrying our peer's data the moment we know of the direct path.
	for _, old := range append([]*pconn{s.in}, s.ins...) {
		if old != pc && !old.left.Swap(true) {
			old.q.abandon(errPathEnd)
			s.left = append(s.left, old)
		}
	}
	s.ins = append(s.ins, pc)
	s.endHoldLocked()
	s.moves++
	r := s.recvd.Load()
	s.lastAck = r
	// Our writes stop at once too: the writer ends after the batch it is
	// writing, not after whatever it finds before moveOut runs.
	old, oldWritten := s.out, s.written
	s.out, s.ready = pc, false
	s.broadcastLocked()
	s.mu.Unlock()
	// First thing on the new path: where the peer's stream resumes.
	pc.sendSession(sessAck, r)
	pc.spawn(func() { s.moveOut(pc, old, oldWritten) })
}

// moveOut moves our data to pc, from old (which carried our stream up to
// oldWritten): END on old once its writes ended, then, once the peer
// acknowledged on pc, START and what it has not taken.
func (s *session) moveOut(pc, old *pconn, oldWritten uint64) {
	s.mu.Lock()
	for s.writing && s.failed == nil { // the writer sees out changed after its batch
		ch := s.changed
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	s.mu.Unlock()
	if old != pc && !old.closed() {
		old.sendSession(sessEnd, oldWritten)
		old.leftBy()
	}

	s.mu.Lock()
	for s.failed == nil && s.out == pc && !pc.sessHeard && !pc.closed() {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-pc.done:
		}
		s.mu.Lock()
	}
	if s.failed != nil || s.out != pc || !pc.sessHeard {
		s.mu.Unlock()
		return // the new path broke first (the agent moves again), or another move took over
	}
	r := max(pc.sessFirstAck, s.acked)
	s.written = r
	if s.eosOn == pc {
		s.eosOn = nil
	}
	s.mu.Unlock()
	pc.sendSession(sessStart, r)
	pc.flushSTUN() // START before the data
	s.mu.Lock()
	if s.out == pc {
		s.ready = true
		s.startWriterLocked()
	}
	s.broadcastLocked()
	s.mu.Unlock()
}

// current is where our data goes now.
func (s *session) current() *pconn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out
}

// closeWrite records our end of stream (CloseWrite or Abort); it follows
// our data on the path, and a move after it repeats it on the new path.
func (s *session) closeWrite(e streamEnd) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end == endNone {
		s.end = e
	}
	s.startWriterLocked()
}

// drained waits until the peer has taken our whole stream (its ACK) and
// our end of stream is out on the current path, at most until done
// closes: what was written but not acknowledged may still be lost with
// its path, and the session resumes it while Close waits. It says what
// is missing, nil when nothing is.
func (s *session) drained(done <-chan struct{}) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.failed == nil && (s.writing || !s.ready || s.acked < s.sent || s.eosDueLocked()) {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-done:
			s.mu.Lock()
			if s.failed == nil {
				return fmt.Errorf("agent: session: the peer acknowledged %d of the %d bytes sent when Close gave up", s.acked, s.sent)
			}
			continue
		}
		s.mu.Lock()
	}
	if s.failed != nil && s.acked < s.sent {
		return fmt.Errorf("agent: session: %d of the %d bytes sent were not acknowledged: %w", s.sent-s.acked, s.sent, s.failed)
	}
	return nil
}

// ackNow acknowledges at once what the reader took: the peer's Close
// waits for it, and ours may close the path before the ACK timer.
func (s *session) ackNow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ackT != nil {
		s.ackT.Stop()
		s.ackT = nil
	}
	s.sendAckLocked(s.recvd.Load())
}

// fail ends the session: readers and writers get err (the first one).
func (s *session) fail(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = err
	}
	if s.ackT != nil {
		s.ackT.Stop()
		s.ackT = nil
	}
	s.broadcastLocked()
	return s.failed
}

// release returns the replay buffer's frames to their pools once nothing
// writes them.
func (s *session) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endHoldLocked()
	for s.pinned > 0 {
		ch := s.changed
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	for _, r := range s.recs {
		putFrame(r.bp)
	}
	s.recs, s.buffered = nil, 0
}

// idHex is the session's id as a restarted agent offers it.
func (s *session) idHex() string { return hex.EncodeToString(s.id[:]) }

// sessionID names a session by both sides' first credentials, which only
// they know; a restart offers it to tell the peer which session resumes.
func sessionID(ufragA, pwdA, ufragB, pwdB string) [8]byte {
	x, y := ufragA+":"+pwdA, ufragB+":"+pwdB
	if x > y {
		x, y = y, x
	}
	sum := sha256.Sum256([]byte(x + "|" + y))
	var id [8]byte
	copy(id[:], sum[:])
	return id
}

// addPath records that the session uses a new path from now, after the
// one before it.
func (s *session) addPath(cp *connPath, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.paths); n > 0 {
		s.paths[n-1].until = now
	}
	s.paths = append(s.paths, pathRec{cp: cp, from: now})
}

// pathRec is a path the session used, from the Conn's record of it: a
// PathStats is built from it when asked for (a PathStats kept for every
// idle session was 0.3 KiB).
type pathRec struct {
	cp          *connPath
	from, until time.Time
}

// sessionStats is where a session's streams are.
type sessionStats struct {
	moves              int
	sent, acked, recvd uint64
	unacked            int
	paths              []PathStats
}

func (s *session) stats() sessionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := sessionStats{moves: s.moves, sent: s.sent, acked: s.acked, recvd: s.recvd.Load(), unacked: s.buffered,
		paths: make([]PathStats, len(s.paths))}
	for i, r := range s.paths {
		pc := r.cp.pc // live counts: a path we left may still drain
		st.paths[i] = PathStats{Path: r.cp.path, Local: r.cp.local, Remote: r.cp.remote, From: r.from, Until: r.until,
			BytesSent: pc.bytesOut.Load(), BytesReceived: pc.bytesIn.Load(), AfterDirect: pc.afterDirect(), pc: pc}
	}
	return st
}
