package rendezvous

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/signaling"
)

var testTokenKey = []byte("0123456789abcdef-server-secret")

func TestTokenRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, subject := range []string{"", "alice", "ünïcode user", strings.Repeat("s", MaxSubjectLen)} {
		tok, err := MintToken(testTokenKey, Token{Expires: now.Add(time.Hour), Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseToken(testTokenKey, tok, now)
		if err != nil || got.Subject != subject || !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("ParseToken(%q) = %+v, %v", tok, got, err)
		}
		if len(tok) > MaxTokenLen {
			t.Fatalf("token of %d bytes", len(tok))
		}
	}
}

func TestTokenRefusals(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	good, err := MintToken(testTokenKey, Token{Expires: now.Add(time.Minute), Subject: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := MintToken(testTokenKey, Token{Expires: now.Add(-90 * time.Second)})
	otherKey, _ := MintToken([]byte("another-server-secret-16"), Token{Expires: now.Add(time.Minute)})
	parts := strings.Split(good, ".")
	// A subject changed after signing, and a longer expiry.
	resubject := strings.Join([]string{parts[0], parts[1], b64.EncodeToString([]byte("admin")), parts[3]}, ".")
	extended := strings.Join([]string{parts[0], "9999999999", parts[2], parts[3]}, ".")
	tests := []struct{ name, token, want string }{
		{"missing", "", "no token"},
		{"garbage", "hello", "malformed"},
		{"wrong version", "v2" + good[2:], "malformed"},
		{"expired", expired, "expired 1m30s ago"},
		{"other server's key", otherKey, "does not verify"},
		{"subject changed", resubject, "does not verify"},
		{"expiry extended", extended, "does not verify"},
		{"signature cut", good[:len(good)-2], "does not verify"},
		{"too long", good + strings.Repeat("x", MaxTokenLen), "limit"},
	}
	for _, tt := range tests {
		_, err := ParseToken(testTokenKey, tt.token, now)
		if !errors.Is(err, signaling.ErrUnauthorized) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want ErrUnauthorized saying %q", tt.name, err, tt.want)
		}
	}
	if _, err := MintToken([]byte("short"), Token{Expires: now}); err == nil {
		t.Error("minted with a 5-byte key")
	}
	if _, err := MintToken(testTokenKey, Token{}); err == nil {
		t.Error("minted without expiry")
	}
}

// FuzzToken: ParseToken never panics, refuses with ErrUnauthorized, and
// accepts only what MintToken made under the same key.
func FuzzToken(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	good, _ := MintToken(testTokenKey, Token{Expires: now.Add(time.Hour), Subject: "alice"})
	f.Add(good)
	f.Add("v1.1.YQ.AAAA")
	f.Add("v1...")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(testTokenKey, s, now)
		if err != nil {
			if !errors.Is(err, signaling.ErrUnauthorized) {
				t.Fatalf("error %v does not wrap ErrUnauthorized", err)
			}
			return
		}
		again, err := MintToken(testTokenKey, tok)
		if err != nil {
			t.Fatalf("accepted %q but cannot re-mint %+v: %v", s, tok, err)
		}
		if again != s {
			// Only one spelling of a token verifies: base64 without padding
			// and decimal without leading zeros are canonical.
			t.Fatalf("accepted %q, canonical form %q", s, again)
		}
	})
}
