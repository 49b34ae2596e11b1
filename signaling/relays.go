package signaling

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/icetcp/icetcp/internal/quote"
)

// Relay is a TURN relay a rendezvous announces in its joined answer (the
// form of WebRTC's RTCIceServer): a "turn:HOST:PORT?transport=tcp" or
// "turns:HOST:PORT" URI (RFC 7065) and the credentials this member may use
// on it, TURN REST credentials the rendezvous minted for it
// (draft-uberti-behave-turn-rest-00: Username is "<expiry unix
// seconds>:<user>"). Clients never hold the secret the credentials are
// minted with.
type Relay struct {
	URI        string `json:"uri"`
	Username   string `json:"username"`
	Credential string `json:"credential"`
}

// Bounds of the announced relays a client takes.
const (
	MaxRelays        = 8   // relays in one joined answer
	MaxRelayURILen   = 256 // bytes of a URI
	MaxRelayCredLen  = 512 // bytes of a username or credential (RFC 8489 §14.3: USERNAME < 513)
	relaySchemeTURN  = "turn:"
	relaySchemeTURNS = "turns:"
)

// AnnouncedRelays returns the relays of rs a client can use, in order, and
// an error naming those it left out: more than MaxRelays, a URI that is not
// turn: or turns:, fields empty, too long, or holding control characters.
// The URI's host and port are the TURN client's to parse; this checks what
// a rendezvous must not be able to slip into a client's configuration.
func AnnouncedRelays(rs []Relay) ([]Relay, error) {
	var ok []Relay
	var bad []string
	for i, r := range rs {
		if len(ok) == MaxRelays {
			bad = append(bad, fmt.Sprintf("%d relays beyond the first %d", len(rs)-i, MaxRelays))
			break
		}
		if err := checkRelay(r); err != nil {
			bad = append(bad, fmt.Sprintf("relay %d: %v", i+1, err))
			continue
		}
		ok = append(ok, r)
	}
	if len(bad) > 0 {
		return ok, fmt.Errorf("%w: announced relays left out: %s", ErrInvalidMessage, strings.Join(bad, "; "))
	}
	return ok, nil
}

func checkRelay(r Relay) error {
	lower := strings.ToLower(r.URI)
	switch {
	case !strings.HasPrefix(lower, relaySchemeTURN) && !strings.HasPrefix(lower, relaySchemeTURNS):
		return fmt.Errorf("URI %s is not turn: or turns:", quote.Short(r.URI))
	case len(r.URI) > MaxRelayURILen:
		return fmt.Errorf("URI longer than %d bytes", MaxRelayURILen)
	case strings.IndexFunc(r.URI, func(c rune) bool { return c <= ' ' || c > '~' }) >= 0:
		return fmt.Errorf("URI %s has a space, control or non-ASCII character", quote.Short(r.URI))
	}
	for _, f := range []struct{ name, v string }{{"username", r.Username}, {"credential", r.Credential}} {
		switch {
		case f.v == "":
			return fmt.Errorf("%s empty", f.name)
		case len(f.v) > MaxRelayCredLen:
			return fmt.Errorf("%s longer than %d bytes", f.name, MaxRelayCredLen)
		case !utf8.ValidString(f.v) || strings.IndexFunc(f.v, unicode.IsControl) >= 0:
			return fmt.Errorf("%s has a control character or is not UTF-8", f.name)
		}
	}
	return nil
}
