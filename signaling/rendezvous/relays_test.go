package rendezvous

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/turn"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// TestJoinedAnswerAnnouncesRelays: every member's joined answer names the
// relays, with TURN REST credentials of its own that a relay holding the
// secret accepts: the user part is the member's source (or its token's
// subject), the expiry an hour away; the secret itself never leaves.
func TestJoinedAnswerAnnouncesRelays(t *testing.T) {
	checkGoroutines(t)
	now := time.Unix(1_800_000_000, 0)
	const secret = "relay-fleet-secret"
	key := []byte("0123456789abcdef0123456789abcdef")
	srv := &Server{
		TokenKey: key,
		Relays: &Relays{URIs: []string{"turn:198.51.100.10:3478?transport=tcp", "turns:relay.example:443"}, Secret: secret,
			Now: func() time.Time { return now }},
	}
	url := startServer(t, srv)
	for _, tc := range []struct {
		subject, user string
	}{
		{"", "ip:127.0.0.1"},
		{"alice", "sub:alice"},
	} {
		tok, err := MintToken(key, Token{Expires: time.Now().Add(time.Hour), Subject: tc.subject})
		if err != nil {
			t.Fatal(err)
		}
		c, err := (&wsclient.Dialer{Token: tok}).Dial(testCtx(t), url, "room-"+tc.user[:2])
		if err != nil {
			t.Fatal(err)
		}
		relays, err := c.Relays()
		c.Close()
		if err != nil || len(relays) != 2 || relays[1].URI != "turns:relay.example:443" {
			t.Fatalf("relays %+v, %v", relays, err)
		}
		r := relays[0]
		exp, err := turn.RESTExpiry(r.Username, now)
		if err != nil || exp.Sub(now) < time.Hour || exp.Sub(now) > time.Hour+2*time.Second {
			t.Fatalf("username %q: expiry %v, %v", r.Username, exp, err)
		}
		if _, user, _ := strings.Cut(r.Username, ":"); user != tc.user {
			t.Fatalf("username %q: user part %q, want %q", r.Username, user, tc.user)
		}
		if r.Credential != turn.RESTPassword(secret, r.Username) || strings.Contains(r.Credential+r.Username, secret) {
			t.Fatalf("credential %q is not the REST password of %q", r.Credential, r.Username)
		}
	}
	// Without Relays nothing is announced.
	plain := startServer(t, &Server{})
	c := dial(t, plain, "r")
	if relays, err := c.Relays(); relays != nil || err != nil {
		t.Fatalf("a server without relays announced %+v, %v", relays, err)
	}
}

// TestTrustedProxyNamesTheClient: behind a trusted proxy, per-source limits
// count the client the proxy names; a client that is not a trusted proxy
// cannot name anyone.
func TestTrustedProxyNamesTheClient(t *testing.T) {
	checkGoroutines(t)
	srv := &Server{MaxConnsPerSource: 1, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	url := startServer(t, srv)
	via := func(src, client string) *wsclient.Dialer {
		d := fromSource(src)
		d.HTTPHeader = http.Header{"X-Forwarded-For": {client}}
		return d
	}
	// Two clients through the proxy: one connection each, within the limit.
	for _, client := range []string{"198.51.100.1", "198.51.100.2"} {
		c, err := via("127.0.0.2", client).Dial(testCtx(t), url, "r-"+client)
		if err != nil {
			t.Fatalf("%s through the proxy: %v", client, err)
		}
		defer c.Close()
	}
	// The same client again through the proxy: over its own limit.
	if _, err := via("127.0.0.2", "198.51.100.1").Dial(testCtx(t), url, "r3"); !errors.Is(err, signaling.ErrTooManyConnections) {
		t.Fatalf("second connection of 198.51.100.1: %v, want too-many-connections", err)
	}
	// An untrusted client naming others is counted as itself.
	c, err := via("127.0.0.3", "198.51.100.9").Dial(testCtx(t), url, "r4")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := via("127.0.0.3", "198.51.100.10").Dial(testCtx(t), url, "r5"); !errors.Is(err, signaling.ErrTooManyConnections) {
		t.Fatalf("an untrusted client got a second connection by naming another address: %v", err)
	}
}
