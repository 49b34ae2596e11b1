package relay

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	restcred "github.com/icetcp/icetcp/internal/turn"
)

func TestNoAnonymousRelay(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("New without credentials: %v, want ErrNoCredentials", err)
	}
}

func TestLongTermAuth(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	tests := []struct {
		name, user, pass string
		code             int
	}{
		{"right password", testUser, testPass, 0},
		{"wrong password", testUser, "guess", 401},
		{"unknown user", "mallory", testPass, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, ts.addr, clientOpts{user: tt.user, pass: tt.pass})
			if got := turnCode(c.allocate()); got != tt.code {
				t.Fatalf("Allocate answered %d, want %d", got, tt.code)
			}
		})
	}
	if got := ts.Stats().Refused.Auth; got != 2 {
		t.Fatalf("auth refusals %d, want 2", got)
	}
}

// The key binds the realm; pion's server does not compare it, the relay
// does.
func TestWrongRealm(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	r.realm = "elsewhere"
	if res := r.allocate(); code(res) != 401 {
		t.Fatalf("Allocate with realm %q answered %v, want 401", r.realm, res)
	}
}

func TestRESTAuth(t *testing.T) {
	checkLeaks(t)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	const secret = "rest-secret"
	cfg := baseConfig() // long-term users keep working beside REST
	cfg.Secret = secret
	cfg.Now = func() time.Time { return now }
	ts := startServer(t, cfg)

	valid, validPass := restcred.RESTCredentials(secret, "bob", now.Add(time.Hour))
	expired, expiredPass := restcred.RESTCredentials(secret, "bob", now.Add(-time.Second))
	atNow, atNowPass := restcred.RESTCredentials(secret, "bob", now)
	noUser, noUserPass := restcred.RESTCredentials(secret, "", now.Add(time.Minute))
	tests := []struct {
		name, user, pass string
		code             int
	}{
		{"valid", valid, validPass, 0},
		{"valid without a user part", noUser, noUserPass, 0},
		{"long-term user too", testUser, testPass, 0},
		{"expired", expired, expiredPass, 401},
		{"expiring right now", atNow, atNowPass, 401},
		{"other secret", valid, restcred.RESTPassword("not-the-secret", valid), 401},
		{"not a REST username", "bob", restcred.RESTPassword(secret, "bob"), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, ts.addr, clientOpts{user: tt.user, pass: tt.pass})
			if got := turnCode(c.allocate()); got != tt.code {
				t.Fatalf("Allocate as %q answered %d, want %d", tt.user, got, tt.code)
			}
		})
	}
	if got := ts.Stats().Refused.Auth; got != 4 {
		t.Fatalf("auth refusals %d, want 4", got)
	}
}

// Every TURN request after Allocate is authenticated too: a ConnectionBind
// with another user's credentials gets no connection.
func TestConnectionBindNeedsTheAllocationsUser(t *testing.T) {
	checkLeaks(t)
	cfg := loopbackConfig()
	cfg.Users["eve"] = "evepass"
	ts := startServer(t, cfg)
	alice := dialRaw(t, ts.addr, testUser, testPass)
	alice.mustAllocate()
	l := peerListener(t, "127.0.0.1")
	accepted := acceptOne(t, l)
	res := alice.request(stun.MethodConnect, peerAddr(addrOf(l)))
	if code(res) != 0 {
		t.Fatalf("Connect: %v", res)
	}
	var cid stun.RawAttribute
	if a, ok := res.Attributes.Get(attrConnectionID); ok {
		cid = a
	} else {
		t.Fatalf("no CONNECTION-ID in %v", res)
	}
	peer := recvConn(t, accepted)

	eve := dialRaw(t, ts.addr, "eve", "evepass")
	// Eve learns a nonce with an Allocate of her own, then binds Alice's
	// connection ID on a fresh connection. Her nonce is not good for
	// Alice's allocation (438, as coturn answers); with the one that
	// answer gives, her credentials are still not Alice's (400).
	eve.mustAllocate()
	eveData := eve.another(ts.addr)
	res = eveData.request(stun.MethodConnectionBind, cid)
	if code(res) != 438 {
		t.Fatalf("ConnectionBind of alice's connection with eve's nonce answered %v, want 438", res)
	}
	eveData.learn(res)
	if res := eveData.request(stun.MethodConnectionBind, cid); code(res) != 400 {
		t.Fatalf("ConnectionBind of alice's connection by eve answered %v, want 400", res)
	}
	// Alice still binds it, and the peer's bytes reach her.
	aliceData := alice.another(ts.addr)
	if res := aliceData.request(stun.MethodConnectionBind, cid); code(res) != 0 {
		t.Fatalf("ConnectionBind by alice answered %v", res)
	}
	exchange(t, peer, aliceData.conn, []byte("for alice"), []byte("thanks"))
}

// TestRESTKeyRemembered: a REST username's key is computed once, and its
// expiry is still checked on every request.
func TestRESTKeyRemembered(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	a := &authenticator{realm: DefaultRealm, secret: "s", now: func() time.Time { return now }}
	user, _ := restcred.RESTCredentials("s", "bob", now.Add(time.Minute))
	computed := 0
	a.rest.keys = nil
	id1, k1, why1 := a.lookup(user, DefaultRealm)
	if _, ok := a.rest.keys[user]; !ok || why1 != "" || id1 != "rest:bob" {
		t.Fatalf("first lookup: %q %x %q", id1, k1, why1)
	}
	a.rest.get(user, func() []byte { computed++; return nil })
	if computed != 0 {
		t.Fatal("the key was computed again")
	}
	now = now.Add(2 * time.Minute)
	if _, _, why := a.lookup(user, DefaultRealm); !strings.Contains(why, "expired") {
		t.Fatalf("expired username, remembered key: %q", why)
	}
}
