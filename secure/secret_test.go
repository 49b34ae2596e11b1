package secure

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/icetcp/icetcp/signaling"
)

func TestSecretRoundTrip(t *testing.T) {
	for range 100 {
		s := NewSecret()
		code := s.String()
		if len(code) != 34 || strings.Count(code, "-") != 6 {
			t.Fatalf("code %q: want 7 groups of 4", code)
		}
		for _, variant := range []string{
			code,
			strings.ToUpper(code),
			strings.ReplaceAll(code, "-", ""),
			strings.ReplaceAll(code, "-", " "),
			strings.NewReplacer("1", "l", "0", "o").Replace(code), // read aloud, typed back
			strings.NewReplacer("1", "I", "0", "O").Replace(code),
		} {
			p, err := ParseSecret(variant)
			if err != nil {
				t.Fatalf("ParseSecret(%q) of %q: %v", variant, code, err)
			}
			if p != s {
				t.Fatalf("ParseSecret(%q) = %q, want %q", variant, p, s)
			}
		}
	}
}

func TestNewSecretsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		c := NewSecret().String()
		if seen[c] {
			t.Fatalf("secret %q twice", c)
		}
		seen[c] = true
	}
}

// withCheck returns data (26 symbols) plus its check symbols: a code a
// person could make up by hand and compute the check for.
func withCheck(data string) string { return data + checkSymbols(data) }

func TestParseSecretRefusesWeakOrWrong(t *testing.T) {
	good := testSecret(t).String()
	typo := []byte(good)
	if typo[0] == 'a' {
		typo[0] = 'b'
	} else {
		typo[0] = 'a'
	}
	tests := []struct {
		name, code, want string
	}{
		{"empty", "", "0 symbols, want 28"},
		{"a password", "correcthorse", "not one of"}, // 'o' is fine, 'r'... 'u'? no: has no u; fails on length
		{"short", good[:20], "symbols, want 28"},
		{"long", good + "-abcd", "symbols, want 28"},
		{"foreign character", "u" + good[1:], `character 'u'`},
		{"non-ASCII", "é" + good[1:], `character 'é'`},
		{"typo", string(typo), "mistyped"},
		{"all zeros with a valid check", withCheck(strings.Repeat("0", 26)), "only 1 distinct"},
		{"a pattern with a valid check", withCheck(strings.Repeat("abc4567", 4)[:26]), "only 7 distinct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSecret(tt.code)
			if !errors.Is(err, ErrInvalidSecret) {
				t.Fatalf("ParseSecret(%q) = %v, want ErrInvalidSecret", tt.code, err)
			}
			if tt.name == "a password" { // either message is right; it must refuse
				return
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseSecret(%q): %v; want it to say %q", tt.code, err, tt.want)
			}
		})
	}
}

func TestRoomName(t *testing.T) {
	s := testSecret(t)
	room := RoomName(s)
	if !signaling.ValidRoom(room) || !signaling.IsKeyRoom(room) {
		t.Fatalf("RoomName = %q: not a valid key room", room)
	}
	if RoomName(s) != room {
		t.Fatal("RoomName is not deterministic")
	}
	if RoomName(NewSecret()) == room {
		t.Fatal("two secrets, one room")
	}
	// The room's key is not the Noise key, nor the confirmation key.
	seed := RoomKey(s).Seed()
	if bytes.Equal(seed, s.psk()) || bytes.Equal(seed, s.derive(kdfConfirmInfo, 32)) || strings.Contains(room, s.data[:8]) {
		t.Fatalf("room %q shares material with the other keys or the secret", room)
	}
	// Known answer (the seed computed independently with Python's hmac
	// module as HKDF-SHA256, RFC 5869, the public key with the Python
	// cryptography package), so that a change of derivation, which would
	// split old and new peers into different rooms, cannot pass unnoticed.
	if want := "248dde234c1066a3958127355ea732474876258614cc2e0938c183f931e8a79c"; hex.EncodeToString(seed) != want {
		t.Errorf("RoomKey(%s) seed %x, want %s", s, seed, want)
	}
	if want := "key.i76rtt636zdtwtmdo7ii3fougjyondtoztjsmf7drfc4ejqg7t3a"; room != want {
		t.Errorf("RoomName(%s) = %q, want %q", s, room, want)
	}
}

func FuzzParseSecret(f *testing.F) {
	f.Add(testSecret(f).String())
	f.Add("")
	f.Add("0000-0000-0000-0000-0000-0000-0000")
	f.Add("ILOU-ilou-----")
	f.Fuzz(func(t *testing.T, code string) {
		s, err := ParseSecret(code)
		if err != nil {
			if !errors.Is(err, ErrInvalidSecret) {
				t.Fatalf("error %v does not wrap ErrInvalidSecret", err)
			}
			return
		}
		again, err := ParseSecret(s.String())
		if err != nil || again != s {
			t.Fatalf("%q parsed to %q, which parses to %q, %v", code, s, again, err)
		}
	})
}
