package signaling

import (
	"errors"
	"fmt"
)

// Sentinel errors. Functions wrap them with detail, so compare with errors.Is.
var (
	// ErrVersion: a message carries a version other than Version.
	ErrVersion = errors.New("signaling: unsupported message version")
	// ErrTooLarge: a message exceeds the size limit.
	ErrTooLarge = errors.New("signaling: message too large")
	// ErrInvalidMessage: a message fails schema validation. The concrete
	// error is a *MessageError.
	ErrInvalidMessage = errors.New("signaling: invalid message")
	// ErrClosed: the Channel was closed.
	ErrClosed = errors.New("signaling: channel closed")
	// ErrPeerLeft: the other agent went away.
	ErrPeerLeft = errors.New("signaling: peer left")

	// ErrRoomFull: the room already has two members.
	ErrRoomFull = errors.New("signaling: room full")
	// ErrUnknownRoom: the server serves a fixed list of rooms and this is not one of them.
	ErrUnknownRoom = errors.New("signaling: unknown room")
	// ErrInvalidRoom: a room name is not 1..128 characters of [A-Za-z0-9._-].
	ErrInvalidRoom = errors.New("signaling: invalid room name")
	// ErrNotJoined: a message arrived at the server before a join.
	ErrNotJoined = errors.New("signaling: not joined")
	// ErrTooManyRooms: the server reached its MaxRooms.
	ErrTooManyRooms = errors.New("signaling: too many rooms")
	// ErrQueueFull: the room's queue for an absent member is full.
	ErrQueueFull = errors.New("signaling: queue full")
	// ErrRendezvousOnly: an agent tried to send a type only the rendezvous produces.
	ErrRendezvousOnly = errors.New("signaling: message type is produced by the rendezvous only")
	// ErrUnauthorized: the server requires a token and the one given is
	// missing, malformed, forged or expired.
	ErrUnauthorized = errors.New("signaling: unauthorized")
	// ErrTooManyConnections: the server's connection limit, overall or for
	// the client's source address, is reached.
	ErrTooManyConnections = errors.New("signaling: too many connections")
	// ErrRoomExpired: nothing was relayed in the room for the server's
	// RoomIdleTimeout, so it closed the room.
	ErrRoomExpired = errors.New("signaling: room expired")
	// ErrJoinTimeout: the connection sent no join within the server's JoinTimeout.
	ErrJoinTimeout = errors.New("signaling: no join in time")
	// ErrRoomProof: the room belongs to a key (a secret's, see
	// RoomForKey) and the join did not prove it holds that key, or the
	// rendezvous does not check such proofs.
	ErrRoomProof = errors.New("signaling: room proof refused")
	// ErrUnavailable: the rendezvous cannot serve the join or the message
	// now (a node that lost its cluster); another node, or a later try,
	// may.
	ErrUnavailable = errors.New("signaling: rendezvous unavailable")
)

// Error codes in the Code field of TypeError messages and of the server's
// join answers. They are stable wire values; the text in Reason is not.
const (
	CodeRoomFull           = "room-full"
	CodeUnknownRoom        = "unknown-room"
	CodeInvalidRoom        = "invalid-room"
	CodeNotJoined          = "not-joined"
	CodeTooManyRooms       = "too-many-rooms"
	CodeQueueFull          = "queue-full"
	CodeInvalidMessage     = "invalid-message"
	CodeVersion            = "unsupported-version"
	CodeUnauthorized       = "unauthorized"
	CodeTooManyConnections = "too-many-connections"
	CodeRoomExpired        = "room-expired"
	CodeJoinTimeout        = "join-timeout"
	CodeRoomProof          = "room-proof"
	CodeUnavailable        = "unavailable"
)

// codeErrors maps wire codes to sentinels in both directions.
var codeErrors = map[string]error{
	CodeRoomFull:           ErrRoomFull,
	CodeUnknownRoom:        ErrUnknownRoom,
	CodeInvalidRoom:        ErrInvalidRoom,
	CodeNotJoined:          ErrNotJoined,
	CodeTooManyRooms:       ErrTooManyRooms,
	CodeQueueFull:          ErrQueueFull,
	CodeInvalidMessage:     ErrInvalidMessage,
	CodeVersion:            ErrVersion,
	CodeUnauthorized:       ErrUnauthorized,
	CodeTooManyConnections: ErrTooManyConnections,
	CodeRoomExpired:        ErrRoomExpired,
	CodeJoinTimeout:        ErrJoinTimeout,
	CodeRoomProof:          ErrRoomProof,
	CodeUnavailable:        ErrUnavailable,
}

// CodeOf returns the wire code for err: the code of the sentinel it
// wraps, or CodeInvalidMessage.
func CodeOf(err error) string {
	for code, sentinel := range codeErrors {
		if errors.Is(err, sentinel) {
			return code
		}
	}
	return CodeInvalidMessage
}

// ErrorOf returns the sentinel error for a wire code, or nil for a code
// this side does not know.
func ErrorOf(code string) error { return codeErrors[code] }

// MessageError describes why a message failed validation. It matches
// ErrInvalidMessage with errors.Is.
type MessageError struct {
	Type    Type   // the message type, empty when the type itself is the problem
	Problem string // e.g. `ufrag "ab" shorter than 4`
}

func (e *MessageError) Error() string {
	if e.Type == "" {
		return e.Problem
	}
	return string(e.Type) + ": " + e.Problem
}

// Is makes errors.Is(err, ErrInvalidMessage) true.
func (e *MessageError) Is(target error) bool { return target == ErrInvalidMessage }

func invalid(t Type, format string, args ...any) error {
	return &MessageError{Type: t, Problem: fmt.Sprintf(format, args...)}
}
