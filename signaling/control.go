package signaling

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Rendezvous-protocol message types. They travel only between a
// rendezvous client and the rendezvous during the join (as Control
// messages) and never reach a Channel's user: Decode refuses them.
const (
	TypeJoin   Type = "join"   // client → rendezvous: Room, and Proof for a key room
	TypeJoined Type = "joined" // rendezvous → client: Room, Members
)

// Control is the wire form of the rendezvous's own messages: the join and
// its answer (joined, with the relays announced to the member, or an error
// with Code and Reason, after which the rendezvous closes), and the error and peer-left messages it sends a
// member. Its JSON is the same object as a Message's, with the fields of
// the join protocol; error and peer-left also decode as Messages, which is
// how a Channel's user sees them.
type Control struct {
	V       int    `json:"v"`
	Type    Type   `json:"type"`
	Room    string `json:"room,omitempty"`
	Proof   string `json:"proof,omitempty"` // join to a key room: ProveJoin
	Members int    `json:"members,omitempty"`
	Code    string `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Relays, in a joined answer, are TURN relays the rendezvous offers
	// this member, each with credentials minted for it (AnnouncedRelays
	// says which of them a client can use).
	Relays []Relay `json:"relays,omitempty"`
}

// EncodeControl returns c's JSON form with V set to Version.
func EncodeControl(c Control) []byte {
	c.V = Version
	b, err := json.Marshal(c)
	if err != nil { // a struct of strings and ints always marshals
		return []byte(`{"v":1,"type":"error","code":"invalid-message"}`)
	}
	return b
}

// EncodeError is the error message the rendezvous sends for err: its code
// (CodeOf) and its text, cut to MaxReasonLen bytes of UTF-8.
func EncodeError(err error) []byte {
	reason := err.Error()
	if len(reason) > MaxReasonLen {
		cut := MaxReasonLen
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	// The client decodes this frame with Decode, which insists on UTF-8.
	reason = strings.ToValidUTF8(reason, "?")
	return EncodeControl(Control{Type: TypeError, Code: CodeOf(err), Reason: reason})
}

// DecodeControl parses a Control: a JSON object whose V is Version
// (ErrVersion otherwise). The type and the fields are the caller's to
// check: a Control is whatever the other end of the join says.
func DecodeControl(b []byte) (Control, error) {
	c := Control{V: missingV}
	if err := json.Unmarshal(b, &c); err != nil {
		return Control{}, fmt.Errorf("signaling: decode: %w: %w", invalid("", "bad JSON"), err)
	}
	switch {
	case c.V == missingV:
		return Control{}, fmt.Errorf("signaling: decode: %w", invalid("", "missing v"))
	case c.V != Version:
		return Control{}, fmt.Errorf("%w: got v=%d, this side speaks %d", ErrVersion, c.V, Version)
	}
	return c, nil
}
