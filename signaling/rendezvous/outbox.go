package rendezvous

import "sync"

// Limits of one server connection's send queue. A member that does not read
// what its peer sends is cut off rather than allowed to grow the server's
// memory; the limits sit above the room queue's so that flushing a full
// room queue to a newcomer always fits.
const (
	outboxMessages = 1024
	outboxBytes    = 4 << 20
)

// outbox queues frames for one server connection's writer goroutine, so that
// relaying under the Server's mutex never waits on a socket.
type outbox struct {
	ready chan struct{} // capacity 1: "state changed"

	mu sync.Mutex
	// guarded by mu
	frames   [][]byte
	bytes    int
	closed   bool // the connection is ending; drop everything
	overflow bool // a push hit the limits; the writer cuts the connection
}

func newOutbox() *outbox { return &outbox{ready: make(chan struct{}, 1)} }

// push queues b. It reports false when the connection is closing or the
// queue overflowed; the overflow is then handled by the writer.
func (o *outbox) push(b []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.overflow {
		return false
	}
	if len(o.frames) >= outboxMessages || o.bytes+len(b) > outboxBytes {
		o.overflow = true
		o.frames, o.bytes = nil, 0
		o.wake()
		return false
	}
	o.frames = append(o.frames, b)
	o.bytes += len(b)
	o.wake()
	return true
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.frames, o.bytes = nil, 0
	o.mu.Unlock()
	o.wake()
}

func (o *outbox) wake() {
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

// next waits for the next frame. ok is false when the writer must stop;
// overflow then says whether it must cut the connection first.
func (o *outbox) next() (b []byte, ok, overflow bool) {
	for {
		o.mu.Lock()
		switch {
		case o.closed:
			o.mu.Unlock()
			return nil, false, false
		case o.overflow:
			o.mu.Unlock()
			return nil, false, true
		case len(o.frames) > 0:
			b = o.frames[0]
			o.frames[0] = nil
			o.frames = o.frames[1:]
			o.bytes -= len(b)
			o.mu.Unlock()
			return b, true, false
		}
		o.mu.Unlock()
		<-o.ready
	}
}
