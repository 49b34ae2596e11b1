package rendezvous

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/signaling"
)

var t0 = time.Unix(1_800_000_000, 0)

func TestRoomTableJoinRelayLeave(t *testing.T) {
	tab := newRoomTable[int](nil, roomLimits{maxRooms: 10, maxPerSource: 10, queueMessages: 3, queueBytes: 100})
	if n, flush, err := tab.join("r", 1, "src", t0); err != nil || n != 1 || flush != nil {
		t.Fatalf("join 1: %d %v %v", n, flush, err)
	}
	// Alone: messages are queued.
	for _, msg := range []string{"a", "b"} {
		if _, delivered, err := tab.relay(1, []byte(msg), t0); err != nil || delivered {
			t.Fatalf("relay %s: delivered=%v err=%v", msg, delivered, err)
		}
	}
	n, flush, err := tab.join("r", 2, "src", t0)
	if err != nil || n != 2 || len(flush) != 2 || string(flush[0]) != "a" || string(flush[1]) != "b" {
		t.Fatalf("join 2: %d %q %v", n, flush, err)
	}
	if to, delivered, err := tab.relay(2, []byte("c"), t0); err != nil || !delivered || to != 1 {
		t.Fatalf("relay 2→1: %d %v %v", to, delivered, err)
	}
	if _, _, err := tab.join("r", 3, "src", t0); !errors.Is(err, signaling.ErrRoomFull) {
		t.Fatalf("third join: %v", err)
	}
	if _, _, err := tab.join("other", 1, "src", t0); err == nil {
		t.Fatal("member joined twice")
	}
	if peer, ok := tab.leave(1); !ok || peer != 2 {
		t.Fatalf("leave 1: %d %v", peer, ok)
	}
	if _, ok := tab.leave(1); ok {
		t.Fatal("second leave reported a peer")
	}
	// The remaining member's messages wait for the next joiner.
	if _, delivered, err := tab.relay(2, []byte("d"), t0); err != nil || delivered {
		t.Fatalf("relay after leave: %v %v", delivered, err)
	}
	if _, flush, err := tab.join("r", 4, "src", t0); err != nil || len(flush) != 1 || string(flush[0]) != "d" {
		t.Fatalf("rejoin: %q %v", flush, err)
	}
	tab.leave(2)
	tab.leave(4)
	if len(tab.rooms) != 0 || len(tab.of) != 0 {
		t.Fatalf("empty room not deleted: %v %v", tab.rooms, tab.of)
	}
}

func TestRoomTableErrors(t *testing.T) {
	tab := newRoomTable[int]([]string{"ok", "ok2"}, roomLimits{maxRooms: 1, maxPerSource: 10, queueMessages: 2, queueBytes: 10})
	if _, _, err := tab.join("nope", 1, "src", t0); !errors.Is(err, signaling.ErrUnknownRoom) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown room: %v", err)
	}
	if _, _, err := tab.join("bad name", 1, "src", t0); !errors.Is(err, signaling.ErrInvalidRoom) {
		t.Fatalf("invalid room: %v", err)
	}
	if _, _, err := tab.relay(1, []byte("x"), t0); !errors.Is(err, signaling.ErrNotJoined) {
		t.Fatalf("relay before join: %v", err)
	}
	if _, _, err := tab.join("ok", 1, "src", t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tab.join("ok2", 2, "src", t0); !errors.Is(err, signaling.ErrTooManyRooms) {
		t.Fatalf("max rooms: %v", err)
	}
	// Queue limits: 2 messages, 10 bytes.
	tab.relay(1, []byte("12345"), t0)
	if _, _, err := tab.relay(1, []byte("123456"), t0); !errors.Is(err, signaling.ErrQueueFull) {
		t.Fatalf("byte limit: %v", err)
	}
	tab.relay(1, []byte("1"), t0)
	if _, _, err := tab.relay(1, []byte("1"), t0); !errors.Is(err, signaling.ErrQueueFull) {
		t.Fatalf("message limit: %v", err)
	}
}

func TestRoomTablePerSourceAndIdle(t *testing.T) {
	tab := newRoomTable[int](nil, roomLimits{maxRooms: 100, maxPerSource: 2, queueMessages: 3, queueBytes: 100})
	for i, name := range []string{"a", "b"} {
		if _, _, err := tab.join(name, i, "10.0.0.1", t0); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := tab.join("c", 9, "10.0.0.1", t0)
	if !errors.Is(err, signaling.ErrTooManyRooms) || !errors.Is(err, errPerSource) || !strings.Contains(err.Error(), "10.0.0.1") {
		t.Fatalf("third room from one source: %v", err)
	}
	// Joining a room someone else opened does not count; other sources are free.
	if _, _, err := tab.join("a", 10, "10.0.0.1", t0); err != nil {
		t.Fatalf("joining an existing room: %v", err)
	}
	if _, _, err := tab.join("c", 11, "10.0.0.2", t0); err != nil {
		t.Fatalf("another source: %v", err)
	}
	// A room's slot comes back when it empties.
	tab.leave(1)
	if _, _, err := tab.join("d", 12, "10.0.0.1", t0); err != nil {
		t.Fatalf("after a room closed: %v", err)
	}
	// Idle: since the last join or message.
	later := t0.Add(time.Minute)
	tab.relay(0, []byte("x"), later)
	if tab.idle(0, later.Add(59*time.Second), time.Minute) {
		t.Fatal("room idle right after a message")
	}
	if !tab.idle(12, later, time.Minute) || !tab.idle(0, later.Add(time.Minute), time.Minute) {
		t.Fatal("idle room not reported")
	}
}
