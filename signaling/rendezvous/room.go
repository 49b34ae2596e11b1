package rendezvous

import (
	"fmt"
	"time"

	"github.com/icetcp/icetcp/internal/quote"
	"github.com/icetcp/icetcp/signaling"
)

// Default limits of the rendezvous.
const (
	DefaultMaxRooms = 10000
	// DefaultMaxRoomsPerSource bounds the rooms whose first member came
	// from one source address (an IPv4 address or an IPv6 /64), so that one
	// client cannot take the room table. Clients behind one carrier-grade
	// NAT share it: raise it for such deployments, or require tokens.
	DefaultMaxRoomsPerSource = 32
	// Messages queued for a member who has not joined yet. A full trickle
	// with many interfaces is a few dozen messages; the bound only stops a
	// lone member from filling the server's memory.
	DefaultQueueMessages = 256
	DefaultQueueBytes    = 1 << 20
)

// roomTable is the rendezvous's state: rooms of two members and the messages
// queued for a member who has not arrived. It does no I/O and has no lock:
// the Server calls it under its mutex, and tests call it directly. M is the
// member handle (a connection in the server, an int in tests).
type roomTable[M comparable] struct {
	allowed       map[string]bool // nil: any valid name, rooms created on first join
	maxRooms      int
	maxPerSource  int
	queueMessages int
	queueBytes    int

	rooms    map[string]*room[M]
	of       map[M]*room[M] // the room each member is in
	bySource map[string]int // rooms open per creating source
}

type room[M comparable] struct {
	name    string
	source  string // of the member who created it
	members []M    // 0..2, in join order
	queue   [][]byte
	queued  int       // bytes in queue
	active  time.Time // last join or relayed message
}

// roomLimits are the table's bounds.
type roomLimits struct {
	maxRooms, maxPerSource, queueMessages, queueBytes int
}

func newRoomTable[M comparable](allowed []string, lim roomLimits) *roomTable[M] {
	t := &roomTable[M]{
		maxRooms:      lim.maxRooms,
		maxPerSource:  lim.maxPerSource,
		queueMessages: lim.queueMessages,
		queueBytes:    lim.queueBytes,
		rooms:         make(map[string]*room[M]),
		of:            make(map[M]*room[M]),
		bySource:      make(map[string]int),
	}
	if len(allowed) > 0 {
		t.allowed = make(map[string]bool, len(allowed))
		for _, name := range allowed {
			t.allowed[name] = true
		}
	}
	return t
}

// join puts m, connected from source, into the room called name. It
// returns the member count after joining and the messages queued for m,
// which the caller must deliver before anything relayed later.
func (t *roomTable[M]) join(name string, m M, source string, now time.Time) (members int, flush [][]byte, err error) {
	if !signaling.ValidRoom(name) {
		return 0, nil, fmt.Errorf("%w: %s", signaling.ErrInvalidRoom, quote.Short(name))
	}
	if t.allowed != nil && !t.allowed[name] {
		return 0, nil, fmt.Errorf("%w %q", signaling.ErrUnknownRoom, name)
	}
	if r, ok := t.of[m]; ok {
		return 0, nil, fmt.Errorf("rendezvous: already in room %q: %w", r.name, signaling.ErrInvalidMessage)
	}
	r := t.rooms[name]
	if r == nil {
		if len(t.rooms) >= t.maxRooms {
			return 0, nil, fmt.Errorf("%w: limit %d", signaling.ErrTooManyRooms, t.maxRooms)
		}
		if t.bySource[source] >= t.maxPerSource {
			return 0, nil, fmt.Errorf("%w: %w: %d rooms opened from %s, limit %d", signaling.ErrTooManyRooms, errPerSource, t.bySource[source], source, t.maxPerSource)
		}
		r = &room[M]{name: name, source: source}
		t.rooms[name] = r
		t.bySource[source]++
	}
	if len(r.members) >= 2 {
		return 0, nil, fmt.Errorf("%w: %q", signaling.ErrRoomFull, name)
	}
	r.members = append(r.members, m)
	r.active = now
	t.of[m] = r
	// The queue holds what the first member sent while alone; it is for
	// whoever joins next, which is m whenever the room now has two members.
	if len(r.members) == 2 {
		flush, r.queue, r.queued = r.queue, nil, 0
	}
	return len(r.members), flush, nil
}

// relay routes msg from member from. With the other member present it
// returns that member and delivered=true; otherwise msg is queued for the
// next joiner, or signaling.ErrQueueFull is returned when the queue is at
// its limits.
func (t *roomTable[M]) relay(from M, msg []byte, now time.Time) (to M, delivered bool, err error) {
	r, ok := t.of[from]
	if !ok {
		return to, false, signaling.ErrNotJoined
	}
	r.active = now
	if peer, ok := r.peerOf(from); ok {
		return peer, true, nil
	}
	if len(r.queue) >= t.queueMessages || r.queued+len(msg) > t.queueBytes {
		return to, false, fmt.Errorf("%w: room %q holds %d messages (%d bytes) for a peer that has not joined; limits %d messages, %d bytes",
			signaling.ErrQueueFull, r.name, len(r.queue), r.queued, t.queueMessages, t.queueBytes)
	}
	r.queue = append(r.queue, msg)
	r.queued += len(msg)
	return to, false, nil
}

// leave removes m from its room. It returns the remaining member, if any,
// who must be told that its peer left. An empty room is deleted with its
// queue: nobody is left to whom the queued messages could matter.
func (t *roomTable[M]) leave(m M) (peer M, ok bool) {
	r, in := t.of[m]
	if !in {
		return peer, false
	}
	delete(t.of, m)
	peer, ok = r.peerOf(m)
	for i, x := range r.members {
		if x == m {
			r.members = append(r.members[:i], r.members[i+1:]...)
			break
		}
	}
	if len(r.members) == 0 {
		delete(t.rooms, r.name)
		if t.bySource[r.source]--; t.bySource[r.source] <= 0 {
			delete(t.bySource, r.source)
		}
	}
	return peer, ok
}

// idle reports whether m's room has seen no join and no message for at
// least timeout.
func (t *roomTable[M]) idle(m M, now time.Time, timeout time.Duration) bool {
	r, ok := t.of[m]
	return ok && now.Sub(r.active) >= timeout
}

// size returns the number of rooms open.
func (t *roomTable[M]) size() int { return len(t.rooms) }

// roomOf returns the name of m's room.
func (t *roomTable[M]) roomOf(m M) (string, bool) {
	r, ok := t.of[m]
	if !ok {
		return "", false
	}
	return r.name, true
}

func (r *room[M]) peerOf(m M) (peer M, ok bool) {
	for _, x := range r.members {
		if x != m {
			return x, true
		}
	}
	return peer, false
}
