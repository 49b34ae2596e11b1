package signaling

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Server-protocol message types. They travel only between a Client and the
// Server during the join and never reach a Channel's user.
const (
	typeJoin   Type = "join"
	typeJoined Type = "joined"
)

// control is the wire form of join, joined and the server's error answers.
type control struct {
	V       int    `json:"v"`
	Type    Type   `json:"type"`
	Room    string `json:"room,omitempty"`
	Proof   string `json:"proof,omitempty"` // join to a key room: see roomproof.go
	Members int    `json:"members,omitempty"`
	Code    string `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func encodeControl(c control) []byte {
	c.V = Version
	b, err := json.Marshal(c)
	if err != nil { // a struct of strings and ints always marshals
		return []byte(`{"v":1,"type":"error","code":"invalid-message"}`)
	}
	return b
}

// errorFrame is what the server sends for err: its code and its text.
func errorFrame(err error) []byte {
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
	return encodeControl(control{Type: TypeError, Code: codeOf(err), Reason: reason})
}

var peerLeftFrame = encodeControl(control{Type: TypePeerLeft})

func decodeControl(b []byte) (control, error) {
	c := control{V: missingV}
	if err := json.Unmarshal(b, &c); err != nil {
		return control{}, fmt.Errorf("signaling: decode: %w: %w", invalid("", "bad JSON"), err)
	}
	switch {
	case c.V == missingV:
		return control{}, fmt.Errorf("signaling: decode: %w", invalid("", "missing v"))
	case c.V != Version:
		return control{}, fmt.Errorf("%w: got v=%d, this side speaks %d", ErrVersion, c.V, Version)
	}
	return c, nil
}

// joinError turns a server error answer into the matching sentinel.
func joinError(room string, c control) error {
	sentinel, ok := codeErrors[c.Code]
	if !ok {
		return fmt.Errorf("signaling: join %q refused: %s (code %q)", room, c.Reason, c.Code)
	}
	return fmt.Errorf("%w: join %q refused by server: %s", sentinel, room, c.Reason)
}
