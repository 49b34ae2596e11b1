package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/icetcp/icetcp/internal/quote"
	"github.com/icetcp/icetcp/signaling"
)

// join admits m to room: the room's record in the bucket is read and
// written back with m in it by compare-and-set, so of two nodes admitting
// at once only one succeeds and the other reads again. Members of the
// record whose node is gone, or says they are gone, are dropped from it
// first. When the record names a peer, its node is told (a joined
// envelope), and messages go straight to that node from then on.
func (c *Cluster) join(ctx context.Context, conn *serverConn, room, source string, now time.Time) error {
	if !signaling.ValidRoom(room) {
		return fmt.Errorf("%w: %s", signaling.ErrInvalidRoom, quote.Short(room))
	}
	if c.allowed != nil && !c.allowed[room] {
		return fmt.Errorf("%w %q", signaling.ErrUnknownRoom, room)
	}
	m := &clusterMember{id: randomID(memberIDLen), conn: conn, room: room, key: roomKey(room), source: source, active: now}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return errServerClosing
	case c.byConn[conn] != nil:
		c.mu.Unlock()
		return fmt.Errorf("rendezvous: already in room %q: %w", c.byConn[conn].room, signaling.ErrInvalidMessage)
	}
	// Registered before the record names it: a peer that reads the
	// record may send to it at once, and probes must find it.
	c.members[m.id], c.byConn[conn] = m, m
	c.local[m.key]++
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	st, err := c.admit(ctx, m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.forget(m)
		return err
	}
	var peer roomMember
	for _, o := range st.Members {
		if o.ID != m.id {
			peer = o
		}
	}
	if peer.ID != "" && m.peer.ID != peer.ID {
		if m.peer.ID != "" {
			// A joined envelope from another member overtook our own
			// result: the record we wrote is the truth.
			m.early = append(m.early, peerLeftFrame)
		}
		m.peer = peer
	}
	m.joined = true
	conn.out.push(c.joinedAnswer(conn, room, len(st.Members)))
	for _, f := range m.early {
		conn.out.push(f)
	}
	m.early = nil
	if m.peer.ID != "" {
		c.publish(m.peer.Node, envelope{Kind: kindJoined, Room: room, From: m.id, Node: c.node, To: m.peer.ID}, nil)
	}
	return nil
}

// admit writes m into its room's record and returns the record as
// written.
func (c *Cluster) admit(ctx context.Context, m *clusterMember) (roomState, error) {
	me := roomMember{Node: c.node, ID: m.id}
	for try := range casTries {
		if try > 0 {
			// Another node wrote the record between our read and our
			// write; a replica's read may also lag the leader.
			if err := sleepCtx(ctx, time.Duration(try)*time.Millisecond); err != nil {
				return roomState{}, unavailable("join", err)
			}
		}
		e, err := c.kv.Get(ctx, m.key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if err := c.charge(m); err != nil {
				return roomState{}, err
			}
			st := roomState{Room: m.room, Members: []roomMember{me}}
			if _, err := c.kv.Create(ctx, m.key, st.encode()); err != nil {
				c.uncharge(m)
				if errors.Is(err, jetstream.ErrKeyExists) {
					continue
				}
				c.noteLocked(EventStoreError)
				return roomState{}, unavailable("join", err)
			}
			return st, nil
		}
		if err != nil {
			c.noteLocked(EventStoreError)
			return roomState{}, unavailable("join", err)
		}
		st, err := decodeRoomState(e.Value())
		if err != nil {
			c.noteLocked(EventStoreError)
			return roomState{}, unavailable("join", err)
		}
		if st.Room != m.room {
			// Two names with one 128-bit hash: not expected in this
			// universe, and never a reason to mix two rooms.
			return roomState{}, fmt.Errorf("%w: %q (its record is taken)", signaling.ErrRoomFull, m.room)
		}
		live := c.live(ctx, st.Members)
		if len(live) >= 2 {
			return roomState{}, fmt.Errorf("%w: %q", signaling.ErrRoomFull, m.room)
		}
		creating := len(live) == 0
		if creating {
			if err := c.charge(m); err != nil {
				return roomState{}, err
			}
		}
		st.Members = append(live, me)
		if _, err := c.kv.Update(ctx, m.key, st.encode(), e.Revision()); err != nil {
			if creating {
				c.uncharge(m)
			}
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			c.noteLocked(EventStoreError)
			return roomState{}, unavailable("join", err)
		}
		return st, nil
	}
	return roomState{}, unavailable("join", fmt.Errorf("room %s changed %d times while joining", quote.Short(m.room), casTries))
}

// charge counts the room m opens against this node's limits.
func (c *Cluster) charge(m *clusterMember) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.created >= c.lim.maxRooms {
		return fmt.Errorf("%w: limit %d on this node", signaling.ErrTooManyRooms, c.lim.maxRooms)
	}
	if n := c.bySource[m.source]; n >= c.lim.maxPerSource {
		return fmt.Errorf("%w: %w: %d rooms opened from %s on this node, limit %d", signaling.ErrTooManyRooms, errPerSource, n, m.source, c.lim.maxPerSource)
	}
	m.creator = true
	c.created++
	c.bySource[m.source]++
	return nil
}

func (c *Cluster) uncharge(m *clusterMember) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unchargeLocked(m)
}

func (c *Cluster) unchargeLocked(m *clusterMember) {
	if !m.creator {
		return
	}
	m.creator = false
	c.created--
	if c.bySource[m.source]--; c.bySource[m.source] <= 0 {
		delete(c.bySource, m.source)
	}
}

// forget takes m out of this node's tables; under mu.
func (c *Cluster) forget(m *clusterMember) {
	if c.members[m.id] != m {
		return
	}
	delete(c.members, m.id)
	delete(c.byConn, m.conn)
	if c.local[m.key]--; c.local[m.key] <= 0 {
		delete(c.local, m.key)
	}
	c.unchargeLocked(m)
}

func (c *Cluster) relay(conn *serverConn, msg []byte, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.byConn[conn]
	if m == nil || !m.joined {
		return signaling.ErrNotJoined
	}
	m.active = now
	if m.peer.ID != "" {
		return c.publish(m.peer.Node, envelope{Kind: kindMsg, Room: m.room, From: m.id, Node: c.node, To: m.peer.ID}, msg)
	}
	if len(m.queue) >= c.lim.queueMessages || m.queued+len(msg) > c.lim.queueBytes {
		return fmt.Errorf("%w: room %q holds %d messages (%d bytes) for a peer that has not joined; limits %d messages, %d bytes",
			signaling.ErrQueueFull, m.room, len(m.queue), m.queued, c.lim.queueMessages, c.lim.queueBytes)
	}
	m.queue = append(m.queue, msg)
	m.queued += len(msg)
	return nil
}

// publish sends an envelope to a node; under mu, so that a member's
// messages leave in the order it sent them.
func (c *Cluster) publish(node string, e envelope, body []byte) error {
	if err := c.nc.Publish(c.envPre+node, encodeEnvelope(e, body)); err != nil {
		c.note(EventPublishError)
		return unavailable("relay", err)
	}
	return nil
}

// leave takes the member off the room's record and tells whoever remains.
func (c *Cluster) leave(conn *serverConn) {
	c.mu.Lock()
	m := c.byConn[conn]
	if m == nil {
		c.mu.Unlock()
		return
	}
	c.forget(m)
	peer := m.peer
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return // the nodes that remain find this one's members gone
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	rest, err := c.remove(ctx, m.key, m.id)
	if err != nil {
		c.log.Debugf("leave of %s from %q: %v", m.id, m.room, err)
		// The record could not be read: tell the peer we know of.
		rest = nil
		if peer.ID != "" {
			rest = []roomMember{peer}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range rest {
		c.publish(o.Node, envelope{Kind: kindLeft, Room: m.room, From: m.id, Node: c.node, To: o.ID}, nil)
	}
}

// remove takes member id off the record at key and returns the members
// that remain; the record is deleted when none does.
func (c *Cluster) remove(ctx context.Context, key, id string) ([]roomMember, error) {
	for try := range casTries {
		if try > 0 {
			if err := sleepCtx(ctx, time.Duration(try)*time.Millisecond); err != nil {
				return nil, err
			}
		}
		e, err := c.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, nil
		}
		if err != nil {
			c.noteLocked(EventStoreError)
			return nil, err
		}
		st, err := decodeRoomState(e.Value())
		if err != nil {
			c.noteLocked(EventStoreError)
			return nil, err
		}
		rest := st.without(id)
		if len(rest) == len(st.Members) {
			return rest, nil
		}
		if len(rest) == 0 {
			err = c.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
		} else {
			st.Members = rest
			_, err = c.kv.Update(ctx, key, st.encode(), e.Revision())
		}
		if err == nil {
			return rest, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			c.noteLocked(EventStoreError)
			return nil, err
		}
	}
	return nil, fmt.Errorf("room record changed %d times", casTries)
}

func (c *Cluster) idle(conn *serverConn, now time.Time, timeout time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.byConn[conn]
	return m != nil && now.Sub(m.active) >= timeout
}

// onEnvelope handles what another node (or this one) says to a member of
// this node. NATS calls it on one goroutine, in the order a node sent.
func (c *Cluster) onEnvelope(msg *nats.Msg) {
	e, body, err := decodeEnvelope(msg.Data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.note(EventEnvelopeInvalid)
		c.log.Debugf("envelope on %s: %v", msg.Subject, err)
		return
	}
	m := c.members[e.To]
	if m == nil || m.room != e.Room {
		c.note(EventEnvelopeDropped)
		return
	}
	switch e.Kind {
	case kindJoined:
		if m.peer.ID == e.From {
			return
		}
		if m.peer.ID != "" {
			c.deliver(m, peerLeftFrame) // its old peer was found gone
		}
		m.peer = roomMember{Node: e.Node, ID: e.From}
		m.active = time.Now()
		for i, q := range m.queue {
			if c.publish(m.peer.Node, envelope{Kind: kindMsg, Room: m.room, From: m.id, Node: c.node, To: m.peer.ID}, q) != nil {
				m.queue = m.queue[i:]
				return
			}
		}
		m.queue, m.queued = nil, 0
	case kindMsg:
		if m.peer.ID != e.From {
			c.note(EventEnvelopeDropped) // from a member that is no longer its peer
			return
		}
		m.active = time.Now()
		c.deliver(m, body)
	case kindLeft:
		if m.peer.ID != e.From {
			return
		}
		m.peer = roomMember{}
		c.deliver(m, peerLeftFrame)
	}
}

// deliver queues a frame for a member; before its joined answer has gone
// out, behind it. Under mu.
func (c *Cluster) deliver(m *clusterMember, frame []byte) {
	if !m.joined {
		m.early = append(m.early, frame)
		return
	}
	m.conn.out.push(frame) // on overflow the member's writer cuts it off
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
