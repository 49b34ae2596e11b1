package rendezvous

import (
	"context"
	"sync"
	"time"
)

// router admits members to rooms and carries their messages: in this
// process (memoryRouter, the default) or between the nodes of a cluster
// (Cluster, through NATS). The Server owns the connections, their limits
// and their goroutines; a router owns who is in which room and where a
// message goes. A member is the Server's connection; a router only ever
// queues frames on its outbox, so it never waits on a socket.
type router interface {
	// join admits m, connected from source, to room. On success the
	// joined answer and the messages that waited for m are on m's outbox,
	// in that order, before anything relayed later.
	join(ctx context.Context, m *serverConn, room, source string, now time.Time) error
	// relay carries msg from m to its peer, or queues it for the next
	// member (signaling.ErrQueueFull when that queue is full).
	relay(m *serverConn, msg []byte, now time.Time) error
	// leave takes m out of its room; its peer gets a peer-left message.
	// It is a no-op for a member that is in no room.
	leave(m *serverConn)
	// idle reports whether m's room has seen no join and no message for
	// at least timeout.
	idle(m *serverConn, now time.Time, timeout time.Duration) bool
	// rooms is the number of rooms with a member on this node.
	rooms() int
	// close releases what the router holds; members have left by then.
	close() error
}

// memoryRouter keeps the rooms in this process: a roomTable under a lock.
type memoryRouter struct {
	mu    sync.Mutex
	table *roomTable[*serverConn] // guarded by mu
	// joinedAnswer builds the joined answer for a member (the Server adds
	// what it announces to joining peers).
	joinedAnswer func(m *serverConn, room string, members int) []byte
}

func (r *memoryRouter) join(_ context.Context, m *serverConn, room, source string, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	members, flush, err := r.table.join(room, m, source, now)
	if err != nil {
		return err
	}
	// Queued before the lock is released, so that nothing relayed later
	// can overtake them.
	m.out.push(r.joinedAnswer(m, room, members))
	for _, f := range flush {
		m.out.push(f)
	}
	return nil
}

func (r *memoryRouter) relay(from *serverConn, msg []byte, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	to, delivered, err := r.table.relay(from, msg, now)
	if err == nil && delivered {
		to.out.push(msg) // on overflow the receiver's writer cuts it off
	}
	return err
}

func (r *memoryRouter) leave(m *serverConn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if peer, ok := r.table.leave(m); ok {
		peer.out.push(peerLeftFrame)
	}
}

func (r *memoryRouter) idle(m *serverConn, now time.Time, timeout time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.table.idle(m, now, timeout)
}

func (r *memoryRouter) rooms() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.table.size()
}

func (r *memoryRouter) close() error { return nil }
