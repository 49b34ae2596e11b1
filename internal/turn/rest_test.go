package turn

import (
	"errors"
	"testing"
	"time"
)

func TestRESTCredentials(t *testing.T) {
	// The vector of coturn's documentation style: HMAC-SHA1 over the
	// username with the shared secret, base64.
	exp := time.Unix(1700000000, 0)
	u, p := RESTCredentials("north", "alice", exp)
	if u != "1700000000:alice" {
		t.Fatalf("username %q", u)
	}
	if p != RESTPassword("north", u) || p == RESTPassword("south", u) {
		t.Fatalf("password %q does not depend on the secret as it should", p)
	}
	if got, err := RESTExpiry(u, exp.Add(-time.Second)); err != nil || !got.Equal(exp) {
		t.Fatalf("expiry %v, %v", got, err)
	}
	if _, err := RESTExpiry(u, exp); !errors.Is(err, ErrRESTExpired) {
		t.Fatalf("at expiry: %v, want ErrRESTExpired", err)
	}
	for _, bad := range []string{"", "alice", "-5:alice", "12x:alice"} {
		if _, err := RESTExpiry(bad, exp); err == nil || errors.Is(err, ErrRESTExpired) {
			t.Errorf("RESTExpiry(%q) = %v, want a parse error", bad, err)
		}
	}
}
