package signaling

import (
	"fmt"
	"net/netip"
	"time"
)

// Connection limits of the rendezvous.
const (
	// DefaultMaxConns bounds WebSocket connections at once, joined or not.
	DefaultMaxConns = 2 * DefaultMaxRooms
	// DefaultMaxConnsPerSource bounds the connections from one source
	// address (an IPv4 address or an IPv6 /64).
	DefaultMaxConnsPerSource = 2 * DefaultMaxRoomsPerSource
	// DefaultRoomIdleTimeout closes a room in which nothing was joined or
	// relayed for this long: a lone member waiting that long has most
	// likely been forgotten, and it holds a room slot.
	DefaultRoomIdleTimeout = 10 * time.Minute
	// DefaultRefusalLogInterval: refusals are logged at most once per
	// reason per interval, with the count since the last line.
	DefaultRefusalLogInterval = 10 * time.Second
)

// Refusal reasons, the label values of Stats.Refused. They are finer than
// the wire codes: the client needs to know what to do, the operator who
// is refused and why.
const (
	ReasonUnauthorized          = "unauthorized"
	ReasonTooManyConns          = "too-many-connections"
	ReasonTooManyConnsPerSource = "too-many-connections-per-source"
	ReasonTooManyRooms          = "too-many-rooms"
	ReasonTooManyRoomsPerSource = "too-many-rooms-per-source"
	ReasonRoomFull              = "room-full"
	ReasonUnknownRoom           = "unknown-room"
	ReasonInvalidJoin           = "invalid-join"
	ReasonJoinTimeout           = "join-timeout"
	ReasonRoomExpired           = "room-expired"
	ReasonServerClosing         = "server-closing"
	ReasonMessageTooLarge       = "message-too-large"
	ReasonSendQueueOverflow     = "send-queue-overflow"
	ReasonPongTimeout           = "pong-timeout"
)

// sourceOf is the key per-source limits count under: the IP of an
// ip:port, with IPv6 addresses cut to their /64 (one subscriber's usual
// allocation, which a client can otherwise walk through).
func sourceOf(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		if a, aerr := netip.ParseAddr(remoteAddr); aerr == nil {
			ap = netip.AddrPortFrom(a, 0)
		} else {
			return remoteAddr
		}
	}
	a := ap.Addr().Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// connTable counts connections overall and per source. No lock: the
// Server calls it under its mutex.
type connTable struct {
	max, maxPerSource int
	total             int
	bySource          map[string]int
}

func newConnTable(max, maxPerSource int) *connTable {
	return &connTable{max: max, maxPerSource: maxPerSource, bySource: make(map[string]int)}
}

// add takes a slot for source, or says which limit refuses it.
func (t *connTable) add(source string) error {
	if t.total >= t.max {
		return fmt.Errorf("%w: limit %d", ErrTooManyConnections, t.max)
	}
	if n := t.bySource[source]; n >= t.maxPerSource {
		return fmt.Errorf("%w: %w: %d connections from %s, limit %d", ErrTooManyConnections, errPerSource, n, source, t.maxPerSource)
	}
	t.total++
	t.bySource[source]++
	return nil
}

func (t *connTable) remove(source string) {
	t.total--
	if t.bySource[source]--; t.bySource[source] <= 0 {
		delete(t.bySource, source)
	}
}

// refusals counts refusals by reason and decides when to log them: one
// line per reason per interval, carrying the count since the previous
// line, so a flood costs a few log lines rather than one per attempt. No
// lock: the Server calls it under its mutex and logs outside it.
type refusals struct {
	interval time.Duration
	total    map[string]uint64
	pending  map[string]uint64    // not yet in a log line
	last     map[string]time.Time // of the reason's last line
}

func newRefusals(interval time.Duration) *refusals {
	return &refusals{interval: interval, total: map[string]uint64{}, pending: map[string]uint64{}, last: map[string]time.Time{}}
}

// note counts one refusal and returns the line to log, if one is due.
func (r *refusals) note(reason, source string, detail error, now time.Time) (line string, due bool) {
	r.total[reason]++
	r.pending[reason]++
	last, seen := r.last[reason]
	if seen && now.Sub(last) < r.interval {
		return "", false
	}
	n := r.pending[reason]
	r.pending[reason] = 0
	r.last[reason] = now
	if !seen {
		return fmt.Sprintf("refused %s (%s): %v", source, reason, detail), true
	}
	return fmt.Sprintf("refused %d connections (%s) in the last %v; latest %s: %v", n, reason, now.Sub(last).Round(time.Second), source, detail), true
}

func (r *refusals) snapshot() map[string]uint64 {
	m := make(map[string]uint64, len(r.total))
	for k, v := range r.total {
		m[k] = v
	}
	return m
}
