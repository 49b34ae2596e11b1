package signaling

import (
	"errors"
	"strings"
	"testing"
)

func TestValidRoom(t *testing.T) {
	for _, name := range []string{"a", "Room-1.x_y", strings.Repeat("z", 128)} {
		if !ValidRoom(name) {
			t.Errorf("ValidRoom(%q) = false", name)
		}
	}
	for _, name := range []string{"", strings.Repeat("z", 129), "a b", "a/b", "é", "a\n"} {
		if ValidRoom(name) {
			t.Errorf("ValidRoom(%q) = true", name)
		}
	}
}

func TestRoomTableJoinRelayLeave(t *testing.T) {
	tab := newRoomTable[int](nil, 10, 3, 100)
	if n, flush, err := tab.join("r", 1); err != nil || n != 1 || flush != nil {
		t.Fatalf("join 1: %d %v %v", n, flush, err)
	}
	// Alone: messages are queued.
	for _, msg := range []string{"a", "b"} {
		if _, delivered, err := tab.relay(1, []byte(msg)); err != nil || delivered {
			t.Fatalf("relay %s: delivered=%v err=%v", msg, delivered, err)
		}
	}
	n, flush, err := tab.join("r", 2)
	if err != nil || n != 2 || len(flush) != 2 || string(flush[0]) != "a" || string(flush[1]) != "b" {
		t.Fatalf("join 2: %d %q %v", n, flush, err)
	}
	if to, delivered, err := tab.relay(2, []byte("c")); err != nil || !delivered || to != 1 {
		t.Fatalf("relay 2→1: %d %v %v", to, delivered, err)
	}
	if _, _, err := tab.join("r", 3); !errors.Is(err, ErrRoomFull) {
		t.Fatalf("third join: %v", err)
	}
	if _, _, err := tab.join("other", 1); err == nil {
		t.Fatal("member joined twice")
	}
	if peer, ok := tab.leave(1); !ok || peer != 2 {
		t.Fatalf("leave 1: %d %v", peer, ok)
	}
	if _, ok := tab.leave(1); ok {
		t.Fatal("second leave reported a peer")
	}
	// The remaining member's messages wait for the next joiner.
	if _, delivered, err := tab.relay(2, []byte("d")); err != nil || delivered {
		t.Fatalf("relay after leave: %v %v", delivered, err)
	}
	if _, flush, err := tab.join("r", 4); err != nil || len(flush) != 1 || string(flush[0]) != "d" {
		t.Fatalf("rejoin: %q %v", flush, err)
	}
	tab.leave(2)
	tab.leave(4)
	if len(tab.rooms) != 0 || len(tab.of) != 0 {
		t.Fatalf("empty room not deleted: %v %v", tab.rooms, tab.of)
	}
}

func TestRoomTableErrors(t *testing.T) {
	tab := newRoomTable[int]([]string{"ok", "ok2"}, 1, 2, 10)
	if _, _, err := tab.join("nope", 1); !errors.Is(err, ErrUnknownRoom) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown room: %v", err)
	}
	if _, _, err := tab.join("bad name", 1); !errors.Is(err, ErrInvalidRoom) {
		t.Fatalf("invalid room: %v", err)
	}
	if _, _, err := tab.relay(1, []byte("x")); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("relay before join: %v", err)
	}
	if _, _, err := tab.join("ok", 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tab.join("ok2", 2); !errors.Is(err, ErrTooManyRooms) {
		t.Fatalf("max rooms: %v", err)
	}
	// Queue limits: 2 messages, 10 bytes.
	tab.relay(1, []byte("12345"))
	if _, _, err := tab.relay(1, []byte("123456")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("byte limit: %v", err)
	}
	tab.relay(1, []byte("1"))
	if _, _, err := tab.relay(1, []byte("1")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("message limit: %v", err)
	}
	for _, err := range []error{ErrRoomFull, ErrUnknownRoom, ErrInvalidRoom, ErrNotJoined, ErrQueueFull, ErrTooManyRooms, ErrVersion} {
		code := codeOf(err)
		if !errors.Is(codeErrors[code], err) {
			t.Errorf("code %q does not map back to %v", code, err)
		}
	}
}
