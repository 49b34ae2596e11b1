package wsclient

import (
	"context"
	"sync"

	"github.com/icetcp/icetcp/signaling"
)

// inbox is the unbounded-up-to-a-limit queue between the Client's reader
// goroutine and Recv. It must not block the reader: a reader that stops
// reading stops answering WebSocket pings, and the server would drop us
// just because the agent was busy.
type inbox struct {
	ready chan struct{} // capacity 1: "items or err changed"

	mu sync.Mutex
	// guarded by mu
	items []inboxItem
	err   error // final error, returned once items are drained
}

type inboxItem struct {
	m   signaling.Message
	err error // a per-message error (invalid message); not final
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

// push appends an item; it reports false when the queue is at limit.
func (q *inbox) push(it inboxItem, limit int) bool {
	q.mu.Lock()
	if len(q.items) >= limit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	q.wake()
	return true
}

// fail records the final error; the first one wins.
func (q *inbox) fail(err error) {
	q.mu.Lock()
	if q.err == nil {
		q.err = err
	}
	q.mu.Unlock()
	q.wake()
}

func (q *inbox) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop waits for the next item, the final error, ctx or closed.
func (q *inbox) pop(ctx context.Context, closed <-chan struct{}) (inboxItem, error) {
	for {
		select {
		case <-closed:
			return inboxItem{}, signaling.ErrClosed
		default:
		}
		q.mu.Lock()
		if len(q.items) > 0 {
			it := q.items[0]
			q.items[0] = inboxItem{}
			q.items = q.items[1:]
			more := len(q.items) > 0 || q.err != nil
			q.mu.Unlock()
			if more {
				q.wake() // let a concurrent or next pop see the rest
			}
			return it, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return inboxItem{}, err
		}
		select {
		case <-q.ready:
		case <-closed:
			return inboxItem{}, signaling.ErrClosed
		case <-ctx.Done():
			return inboxItem{}, ctx.Err()
		}
	}
}
