package agent

import (
	"sync"
)

// Application frames wait for Conn.Read in buffers sized to the frame (a
// 1,200-byte RTP packet takes a 2 KiB buffer, not 64 KiB), and a connection
// queues at most maxQueuedBytes: beyond it the reader stops reading and TCP
// flow control pushes back on the peer.
const maxQueuedBytes = 256 << 10

// The classes leave room for read-ahead (the next frame's header comes
// with a payload): 64 KiB + 16 holds the largest frame and then some.
var frameClasses = [...]int{2 << 10, 16 << 10, 64<<10 + 16}

var framePools [len(frameClasses)]sync.Pool

func getFrame(n int) *[]byte {
	for i, c := range frameClasses {
		if n <= c {
			if bp, ok := framePools[i].Get().(*[]byte); ok {
				*bp = (*bp)[:n]
				return bp
			}
			b := make([]byte, n, c)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

func putFrame(bp *[]byte) {
	if bp == nil {
		return
	}
	for i, c := range frameClasses {
		if cap(*bp) == c {
			framePools[i].Put(bp)
			return
		}
	}
}

// frameQueue holds received application frames between the connection's
// reader goroutine and Conn.Read. An end marker (the peer's end of stream,
// or the reader's error) is delivered after the frames before it.
type frameQueue struct {
	mu     sync.Mutex // guards following
	frames []*[]byte
	bytes  int
	ended  bool  // no more frames will come
	endErr error // nil: the peer ended its stream deliberately
	// abandoned: the reader left (abandon); a frame pushed after that,
	// by a connection reader that had not seen it yet, is dropped too:
	// taken behind the dropped ones it would be read at their offset.
	abandoned bool
	// readable and writable are poked (capacity 1) on every change.
	readable chan struct{}
	writable chan struct{}
}

func newFrameQueue() *frameQueue {
	return &frameQueue{readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func pokeChan(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// full reports whether the queue is at its byte bound.
func (q *frameQueue) full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes >= maxQueuedBytes
}

// push queues a frame read into bp (from getFrame); the queue owns it.
func (q *frameQueue) push(bp *[]byte) {
	q.mu.Lock()
	if q.abandoned {
		q.mu.Unlock()
		putFrame(bp)
		return
	}
	q.frames = append(q.frames, bp)
	q.bytes += len(*bp)
	q.mu.Unlock()
	pokeChan(q.readable)
}

// end marks the end of the frames: err nil for a deliberate end of stream.
// The first end counts.
func (q *frameQueue) end(err error) {
	q.mu.Lock()
	if !q.ended {
		q.ended, q.endErr = true, err
	}
	q.mu.Unlock()
	pokeChan(q.readable)
}

// abandon drops the queued frames and ends the queue with err, unless it
// has ended already: an end (the peer's end of stream, a break) is read
// after the frames before it, which must stay.
func (q *frameQueue) abandon(err error) {
	q.mu.Lock()
	if q.ended {
		q.mu.Unlock()
		return
	}
	frames := q.frames
	q.frames, q.bytes = nil, 0
	q.ended, q.endErr, q.abandoned = true, err, true
	q.mu.Unlock()
	for _, bp := range frames {
		putFrame(bp)
	}
	pokeChan(q.readable)
	pokeChan(q.writable)
}

// pop returns the next frame, or ended with the end's error once the
// frames before it were taken.
func (q *frameQueue) pop() (bp *[]byte, ended bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) > 0 {
		bp = q.frames[0]
		q.frames[0] = nil
		q.frames = q.frames[1:]
		if len(q.frames) == 0 {
			q.frames = nil
		}
		q.bytes -= len(*bp)
		pokeChan(q.writable)
		return bp, false, nil
	}
	return nil, q.ended, q.endErr
}

// drain returns queued buffers to their pools once nobody will read them.
func (q *frameQueue) drain() {
	q.mu.Lock()
	frames := q.frames
	q.frames, q.bytes = nil, 0
	q.mu.Unlock()
	for _, bp := range frames {
		putFrame(bp)
	}
	pokeChan(q.writable)
}
