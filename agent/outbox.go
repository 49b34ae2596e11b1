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
	// sent, when not nil, is told of each message the channel took.
	sent func(signaling.Message)

	mu      sync.Mutex // guards following
	q       []signaling.Message
	closed  bool
	dropped int
}

// flushTimeout bounds sending what is queued (a bye) after close, so that
// Close never waits long on a slow rendezvous.
const flushTimeout = 250 * time.Millisecond

// maxOutbox bounds queued messages. What the agent sends is bounded by
// construction (credentials, its candidates, a few punch messages, bye);
// the cap is a guard against a stalled signaling transport.
const maxOutbox = 1024

func newOutbox(ch signaling.Channel, log logging.LeveledLogger) *outbox {
	return &outbox{ch: ch, log: log, wake: make(chan struct{}, 1)}
}

// send queues m; on a nil outbox (signaling is over) it does nothing.
func (o *outbox) send(m signaling.Message) {
	if o == nil {
		return
	}
	o.mu.Lock()
	switch {
	case o.closed:
	case len(o.q) >= maxOutbox:
		o.dropped++
	default:
		o.q = append(o.q, m)
	}
	o.mu.Unlock()
	o.poke()
}

// close lets run flush what is queued and return.
func (o *outbox) close() {
	if o == nil {
		return
	}
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
		q, closed, dropped := o.q, o.closed, o.dropped
		o.q, o.dropped = nil, 0
		o.mu.Unlock()
		if dropped > 0 {
			o.log.Warnf("signaling: %d messages dropped: the channel is not keeping up", dropped)
		}
		sendCtx, cancel := ctx, context.CancelFunc(func() {})
		if closed {
			// ctx may already be cancelled (the agent shut down): the last
			// messages (a bye) still get a short chance.
			sendCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		}
		for _, m := range q {
			if err := o.ch.Send(sendCtx, m); err != nil {
				o.log.Debugf("signaling send %s: %v", m.Type, err)
				break
			}
			if o.sent != nil {
				o.sent(m)
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
