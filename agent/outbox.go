package agent

import (
	"context"
	"sync"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/signaling"
)

// outbox sends signaling messages in order on its own goroutine, so the
// agent loop never blocks on the signaling transport.
type outbox struct {
	ch   signaling.Channel
	log  logging.LeveledLogger
	wake chan struct{}

	mu     sync.Mutex // guards following
	q      []signaling.Message
	closed bool
}

// flushTimeout bounds sending what is queued (a bye) after close.
const flushTimeout = 2 * time.Second

func newOutbox(ch signaling.Channel, log logging.LeveledLogger) *outbox {
	return &outbox{ch: ch, log: log, wake: make(chan struct{}, 1)}
}

func (o *outbox) send(m signaling.Message) {
	o.mu.Lock()
	if !o.closed {
		o.q = append(o.q, m)
	}
	o.mu.Unlock()
	o.poke()
}

// close lets run flush what is queued and return.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.poke()
}

func (o *outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) run(ctx context.Context) {
	for {
		o.mu.Lock()
		q, closed := o.q, o.closed
		o.q = nil
		o.mu.Unlock()
		sendCtx := ctx
		var cancel context.CancelFunc = func() {}
		if closed {
			sendCtx, cancel = context.WithTimeout(context.Background(), flushTimeout)
		}
		for _, m := range q {
			if err := o.ch.Send(sendCtx, m); err != nil {
				o.log.Debugf("signaling send %s: %v", m.Type, err)
				break
			}
		}
		cancel()
		if closed {
			return
		}
		select {
		case <-o.wake:
		case <-ctx.Done():
			o.mu.Lock()
			done := o.closed
			o.mu.Unlock()
			if !done {
				// the loop ended without close: nothing more will come
				return
			}
		}
	}
}
