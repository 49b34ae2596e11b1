package signaling

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var goodRelay = Relay{URI: "turn:198.51.100.10:3478?transport=tcp", Username: "1800000000:ip:203.0.113.7", Credential: "aGVsbG8="}

func TestAnnouncedRelays(t *testing.T) {
	turns := Relay{URI: "TURNS:relay.example:443", Username: "u", Credential: "c"}
	got, err := AnnouncedRelays([]Relay{goodRelay, turns})
	if err != nil || !reflect.DeepEqual(got, []Relay{goodRelay, turns}) {
		t.Fatalf("good relays: %v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		r    Relay
		want string
	}{
		{"stun URI", Relay{URI: "stun:198.51.100.10", Username: "u", Credential: "c"}, "not turn: or turns:"},
		{"http URI", Relay{URI: "http://evil", Username: "u", Credential: "c"}, "not turn: or turns:"},
		{"space in URI", Relay{URI: "turn:a b", Username: "u", Credential: "c"}, "space, control"},
		{"newline in URI", Relay{URI: "turn:a\nb", Username: "u", Credential: "c"}, "space, control"},
		{"long URI", Relay{URI: "turn:" + strings.Repeat("a", MaxRelayURILen), Username: "u", Credential: "c"}, "longer than"},
		{"no username", Relay{URI: "turn:a", Credential: "c"}, "username empty"},
		{"no credential", Relay{URI: "turn:a", Username: "u"}, "credential empty"},
		{"control in username", Relay{URI: "turn:a", Username: "u\x00", Credential: "c"}, "control character"},
		{"long credential", Relay{URI: "turn:a", Username: "u", Credential: strings.Repeat("c", MaxRelayCredLen+1)}, "longer than"},
	} {
		got, err := AnnouncedRelays([]Relay{tc.r, goodRelay})
		if !errors.Is(err, ErrInvalidMessage) || !strings.Contains(err.Error(), tc.want) || !reflect.DeepEqual(got, []Relay{goodRelay}) {
			t.Errorf("%s: kept %v, %v; want only the good one and an error with %q", tc.name, got, err, tc.want)
		}
	}
	many := make([]Relay, MaxRelays+3)
	for i := range many {
		many[i] = goodRelay
	}
	if got, err := AnnouncedRelays(many); len(got) != MaxRelays || err == nil || !strings.Contains(err.Error(), "3 relays beyond") {
		t.Errorf("%d relays: kept %d, %v", len(many), len(got), err)
	}
	if got, err := AnnouncedRelays(nil); got != nil || err != nil {
		t.Errorf("none: %v, %v", got, err)
	}
}

// FuzzAnnouncedRelays: whatever a rendezvous puts in a joined answer,
// decoding never panics, every relay kept is turn:/turns: with printable
// ASCII in its URI and no control character in its credentials, within the
// bounds, and a kept set encodes and decodes to itself.
func FuzzAnnouncedRelays(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"joined","room":"r","members":1,"relays":[{"uri":"turn:198.51.100.10:3478?transport=tcp","username":"1:u","credential":"c"}]}`,
		`{"v":1,"type":"joined","relays":[{"uri":"turns:h:443","username":"u","credential":"c"},{"uri":"stun:x"}]}`,
		`{"v":1,"type":"joined","relays":null}`,
		`{"v":1,"type":"joined","relays":[{}]}`,
		`{"v":1,"type":"joined","relays":{"uri":1}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeControl(b)
		if err != nil {
			return
		}
		kept, err := AnnouncedRelays(c.Relays)
		if len(kept) > MaxRelays || (len(kept) < len(c.Relays) && err == nil) {
			t.Fatalf("%d of %d kept, err %v", len(kept), len(c.Relays), err)
		}
		for _, r := range kept {
			l := strings.ToLower(r.URI)
			if !strings.HasPrefix(l, "turn:") && !strings.HasPrefix(l, "turns:") || len(r.URI) > MaxRelayURILen {
				t.Fatalf("kept URI %q", r.URI)
			}
			for _, c := range r.URI {
				if c <= ' ' || c > '~' {
					t.Fatalf("kept URI %q with %q", r.URI, c)
				}
			}
			for _, v := range []string{r.Username, r.Credential} {
				if v == "" || len(v) > MaxRelayCredLen || !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
					t.Fatalf("kept credential field %q", v)
				}
			}
		}
		again, err := DecodeControl(EncodeControl(Control{Type: TypeJoined, Relays: kept}))
		if err != nil || !reflect.DeepEqual(again.Relays, kept) {
			t.Fatalf("kept %v re-decodes to %v, %v", kept, again.Relays, err)
		}
	})
}
