package signaling

import (
	"errors"
	"fmt"
	"testing"
)

// Every wire code maps to its sentinel and back, through wrapping: the
// rendezvous sends CodeOf(err), the client turns the code into ErrorOf.
func TestCodesMapBack(t *testing.T) {
	for _, err := range []error{ErrRoomFull, ErrUnknownRoom, ErrInvalidRoom, ErrNotJoined, ErrQueueFull, ErrTooManyRooms, ErrVersion} {
		code := CodeOf(fmt.Errorf("wrapped: %w", err))
		if !errors.Is(ErrorOf(code), err) {
			t.Errorf("code %q does not map back to %v", code, err)
		}
	}
	if got := CodeOf(errors.New("something else")); got != CodeInvalidMessage {
		t.Errorf("CodeOf(an unknown error) = %q, want %q", got, CodeInvalidMessage)
	}
	if err := ErrorOf("no-such-code"); err != nil {
		t.Errorf("ErrorOf(an unknown code) = %v, want nil", err)
	}
}
