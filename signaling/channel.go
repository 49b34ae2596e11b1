package signaling

import "context"

// Channel carries Messages between exactly two agents.
//
// Send and Recv are safe to call concurrently with each other (one sender
// goroutine, one receiver goroutine). Close unblocks both and makes them,
// and every later call, return an error wrapping ErrClosed.
//
// When the other agent goes away, Recv returns a TypePeerLeft message. An
// error wrapping ErrInvalidMessage from Recv concerns one message only: the
// Channel stays usable. Other errors from Recv are final.
type Channel interface {
	Send(ctx context.Context, m Message) error
	Recv(ctx context.Context) (Message, error)
	Close() error
}

// ValidRoom reports whether name can name a rendezvous room: 1..128
// characters of [A-Za-z0-9._-], so names are safe in URLs and logs.
func ValidRoom(name string) bool {
	if len(name) == 0 || len(name) > MaxRoomLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// MaxRoomLen bounds a room name.
const MaxRoomLen = 128
