package relay

import (
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	turn "github.com/pion/turn/v5"

	restcred "github.com/icetcp/icetcp/internal/turn"
)

// User IDs: what quotas count and what ConnectionBind ownership compares
// (pion's userID). Long-term users and REST users live in separate name
// spaces, so a REST credential whose user part names a long-term user
// neither shares nor exhausts that user's quota (issue 14), and a REST
// username without a user part is not a user of its own: all of them
// share restAnonymous, instead of a fresh quota for every expiry minted.
const (
	userIDLongTerm = "user:"
	userIDREST     = "rest:"
	restAnonymous  = userIDREST // "rest:" and nothing after it
)

// authenticator answers pion's AuthHandler: the long-term key
// MD5(username:realm:password) of RFC 8489 §9.2.2 for a known user, or for a
// TURN REST username whose expiry has not passed.
type authenticator struct {
	realm  string
	users  map[string]string
	keys   map[string][]byte // of users, in realm: computed once, not per request
	secret string
	rest   restKeys // REST usernames' keys, so that each is computed once
	now    func() time.Time
	log    logging.LeveledLogger
	refuse func() // counts a refusal
}

// handle is pion's AuthHandler.
func (a *authenticator) handle(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	userID, key, why := a.lookup(ra.Username, ra.Realm)
	if why != "" {
		a.log.Debugf("%v: %s", ra.SrcAddr, why)
		a.refuse()
		return "", nil, false
	}
	return userID, key, true
}

// lookup returns the user ID and the long-term key for username in realm,
// or why there is none. The user ID is userIDLongTerm and the name for a
// long-term user; userIDREST and the part after the expiry for REST
// credentials (minting a new expiry does not reset a user's quota), or
// restAnonymous when that part is empty.
func (a *authenticator) lookup(username, realm string) (userID string, key []byte, why string) {
	// The key binds the realm: a request naming another realm must fail,
	// and pion does not compare it.
	if realm != a.realm {
		return "", nil, "realm " + quote(realm) + ", want " + quote(a.realm)
	}
	if key, found := a.keys[username]; found {
		return userIDLongTerm + username, key, ""
	}
	if a.secret == "" {
		return "", nil, "unknown user " + quote(username)
	}
	if _, err := restcred.RESTExpiry(username, a.now()); err != nil {
		return "", nil, err.Error()
	}
	_, user, _ := strings.Cut(username, restcred.RESTSeparator)
	key = a.rest.get(username, func() []byte {
		return turn.GenerateAuthKey(username, a.realm, restcred.RESTPassword(a.secret, username))
	})
	return userIDREST + user, key, ""
}

// restKeys remembers the long-term keys of REST usernames: every
// authenticated request of a client needs its key twice (the relay checks
// MESSAGE-INTEGRITY, then pion does), and each is an HMAC-SHA1 and an MD5
// away. The username carries its expiry, which is checked every time; the
// map is emptied when full rather than kept in order.
type restKeys struct {
	mu   sync.Mutex
	keys map[string][]byte
}

const maxRESTKeys = 4096

func (r *restKeys) get(username string, compute func() []byte) []byte {
	r.mu.Lock()
	key, ok := r.keys[username]
	r.mu.Unlock()
	if ok {
		return key
	}
	key = compute()
	r.mu.Lock()
	if r.keys == nil || len(r.keys) >= maxRESTKeys {
		r.keys = make(map[string][]byte)
	}
	r.keys[username] = key
	r.mu.Unlock()
	return key
}

// longTermKeys computes the long-term keys of users in realm.
func longTermKeys(users map[string]string, realm string) map[string][]byte {
	keys := make(map[string][]byte, len(users))
	for u, pw := range users {
		keys[u] = turn.GenerateAuthKey(u, realm, pw)
	}
	return keys
}

// quote quotes s for a log line, cut so that a hostile name stays short.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.ToValidUTF8(`"`+s+`"`, "?")
}
