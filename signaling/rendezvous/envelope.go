package rendezvous

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/icetcp/icetcp/internal/quote"
	"github.com/icetcp/icetcp/signaling"
)

// What the nodes of a cluster say to each other about a room (cluster.go),
// on the subject of the node that holds the addressee:
//
//	{"v":1,"k":"joined","r":ROOM,"f":FROM,"n":NODE,"t":TO}
//	{"v":1,"k":"msg",...}\n<the agent message, verbatim>
//	{"v":1,"k":"left",...}
//
// FROM and TO are member IDs, NODE the sender's node ID. The header is
// one line of JSON (encoding/json escapes newlines in strings); a message
// follows it byte for byte, so that a member receives exactly what its
// peer sent, as on one node.
type envelope struct {
	V    int    `json:"v"`
	Kind string `json:"k"`
	Room string `json:"r"`
	From string `json:"f"`
	Node string `json:"n"`
	To   string `json:"t"`
}

// Envelope kinds.
const (
	kindJoined = "joined" // From joined the room; its node is Node
	kindMsg    = "msg"    // an agent message from From
	kindLeft   = "left"   // From left the room
)

const envelopeVersion = 1

// ID lengths: a node ID is 8 random bytes in hex, a member ID 12.
const (
	nodeIDLen   = 16
	memberIDLen = 24
)

var errEnvelope = errors.New("rendezvous: invalid cluster envelope")

// encodeEnvelope returns the wire form of e, followed by body for a msg.
func encodeEnvelope(e envelope, body []byte) []byte {
	e.V = envelopeVersion
	h, err := json.Marshal(e)
	if err != nil { // strings only: never
		panic(err)
	}
	if e.Kind != kindMsg {
		return h
	}
	b := make([]byte, 0, len(h)+1+len(body))
	b = append(append(append(b, h...), '\n'), body...)
	return b
}

// decodeEnvelope parses and checks an envelope; body is the message of a
// msg (a slice of b).
func decodeEnvelope(b []byte) (e envelope, body []byte, err error) {
	head, body, hasBody := bytes.Cut(b, []byte{'\n'})
	if err := json.Unmarshal(head, &e); err != nil {
		return envelope{}, nil, fmt.Errorf("%w: %w", errEnvelope, err)
	}
	switch {
	case e.V != envelopeVersion:
		return envelope{}, nil, fmt.Errorf("%w: version %d", errEnvelope, e.V)
	case e.Kind != kindJoined && e.Kind != kindMsg && e.Kind != kindLeft:
		return envelope{}, nil, fmt.Errorf("%w: kind %s", errEnvelope, quote.Short(e.Kind))
	case !signaling.ValidRoom(e.Room):
		return envelope{}, nil, fmt.Errorf("%w: room %s", errEnvelope, quote.Short(e.Room))
	case !validID(e.From, memberIDLen) || !validID(e.To, memberIDLen) || !validID(e.Node, nodeIDLen):
		return envelope{}, nil, fmt.Errorf("%w: member or node ID", errEnvelope)
	case (e.Kind == kindMsg) != hasBody:
		return envelope{}, nil, fmt.Errorf("%w: a %s with%s a body", errEnvelope, e.Kind, map[bool]string{true: "", false: "out"}[hasBody])
	case hasBody && (len(body) == 0 || len(body) > signaling.MaxMessageSize):
		return envelope{}, nil, fmt.Errorf("%w: a body of %d bytes", errEnvelope, len(body))
	}
	return e, body, nil
}

// validID reports a lower-case hex ID of n characters.
func validID(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// roomState is a room's record in the cluster's key-value bucket: who is
// in it, in join order. Every change is a compare-and-set on the record's
// revision, so two nodes never both admit a second member.
type roomState struct {
	V       int          `json:"v"`
	Room    string       `json:"room"`
	Members []roomMember `json:"m"`
}

type roomMember struct {
	Node string `json:"n"`
	ID   string `json:"id"`
}

const roomStateVersion = 1

var errRoomState = errors.New("rendezvous: invalid room record")

func (st roomState) encode() []byte {
	st.V = roomStateVersion
	b, err := json.Marshal(st)
	if err != nil { // strings only: never
		panic(err)
	}
	return b
}

// decodeRoomState parses and checks a room record.
func decodeRoomState(b []byte) (roomState, error) {
	var st roomState
	if err := json.Unmarshal(b, &st); err != nil {
		return roomState{}, fmt.Errorf("%w: %w", errRoomState, err)
	}
	switch {
	case st.V != roomStateVersion:
		return roomState{}, fmt.Errorf("%w: version %d", errRoomState, st.V)
	case !signaling.ValidRoom(st.Room):
		return roomState{}, fmt.Errorf("%w: room %s", errRoomState, quote.Short(st.Room))
	case len(st.Members) > 2:
		return roomState{}, fmt.Errorf("%w: %d members", errRoomState, len(st.Members))
	}
	for i, m := range st.Members {
		if !validID(m.Node, nodeIDLen) || !validID(m.ID, memberIDLen) {
			return roomState{}, fmt.Errorf("%w: member or node ID", errRoomState)
		}
		if slices.ContainsFunc(st.Members[:i], func(o roomMember) bool { return o.ID == m.ID }) {
			return roomState{}, fmt.Errorf("%w: member %s twice", errRoomState, m.ID)
		}
	}
	return st, nil
}

// without returns st's members other than id.
func (st roomState) without(id string) []roomMember {
	var out []roomMember
	for _, m := range st.Members {
		if m.ID != id {
			out = append(out, m)
		}
	}
	return out
}
