package wsclient

import (
	"fmt"

	"github.com/coder/websocket"

	"github.com/icetcp/icetcp/signaling"
)

// joinError turns a rendezvous's error answer into the matching sentinel.
func joinError(room string, c signaling.Control) error {
	sentinel := signaling.ErrorOf(c.Code)
	if sentinel == nil {
		return fmt.Errorf("wsclient: join %q refused: %s (code %q)", room, c.Reason, c.Code)
	}
	return fmt.Errorf("%w: join %q refused by server: %s", sentinel, room, c.Reason)
}

// CloseError reports that the rendezvous closed the WebSocket connection,
// with the status code and reason of its close frame. A code of 1009
// (message too big) also matches signaling.ErrTooLarge, and a reason that is
// one of the signaling.Code* values matches that code's sentinel (for
// example "room-expired" matches signaling.ErrRoomExpired).
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("wsclient: connection closed by server (status %d): %q", e.Code, e.Reason)
}

// Is makes errors.Is(err, signaling.ErrTooLarge) true for a close caused
// by an oversized message, and errors.Is(err, sentinel) true for a close
// whose reason is that sentinel's code.
func (e *CloseError) Is(target error) bool {
	if target == signaling.ErrTooLarge && e.Code == int(websocket.StatusMessageTooBig) {
		return true
	}
	sentinel := signaling.ErrorOf(e.Reason)
	return sentinel != nil && sentinel == target
}
