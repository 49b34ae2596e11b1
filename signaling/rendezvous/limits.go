package rendezvous

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/internal/limits"
	"github.com/icetcp/icetcp/signaling"
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
	ReasonNotWebSocket          = "not-websocket"
	ReasonRoomProof             = "room-proof"
	ReasonUnavailable           = "unavailable" // the cluster could not be reached
)

// errPerSource marks a limit that applies to one source address; it
// separates the per-source refusals from the global ones in Stats.
var errPerSource = errors.New("per-source limit")

// sourceOf is the key per-source limits count under, as text: the IP of an
// ip:port, with IPv6 addresses cut to their /64 (limits.SourceKey: one
// subscriber's usual allocation, which a client can otherwise walk
// through). Something that is not an address is its own key.
func sourceOf(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		if a, aerr := netip.ParseAddr(remoteAddr); aerr == nil {
			ap = netip.AddrPortFrom(a, 0)
		} else {
			return remoteAddr
		}
	}
	k := limits.SourceKey(ap.Addr())
	if k.IsSingleIP() {
		return k.Addr().String()
	}
	return k.String()
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
		return fmt.Errorf("%w: limit %d", signaling.ErrTooManyConnections, t.max)
	}
	if n := t.bySource[source]; n >= t.maxPerSource {
		return fmt.Errorf("%w: %w: %d connections from %s, limit %d", signaling.ErrTooManyConnections, errPerSource, n, source, t.maxPerSource)
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

// refusals counts refusals by reason (under the Server's mutex) and logs
// them through a limits.RefusalLog: one line per reason per interval, with
// the count since the previous line, so a flood costs a few log lines
// rather than one per attempt.
type refusals struct {
	total map[string]uint64
	log   *limits.RefusalLog
}

func newRefusals(logf func(string, ...any), interval time.Duration) *refusals {
	return &refusals{total: map[string]uint64{}, log: limits.NewRefusalLog(logf, interval)}
}

func (r *refusals) snapshot() map[string]uint64 {
	m := make(map[string]uint64, len(r.total))
	for k, v := range r.total {
		m[k] = v
	}
	return m
}
