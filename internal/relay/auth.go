package relay

import (
	"strings"
	"time"

	"github.com/pion/logging"
	turn "github.com/pion/turn/v5"

	restcred "github.com/icetcp/icetcp/internal/turn"
)

// authenticator answers pion's AuthHandler: the long-term key
// MD5(username:realm:password) of RFC 8489 §9.2.2 for a known user, or for a
// TURN REST username whose expiry has not passed.
type authenticator struct {
	realm  string
	users  map[string]string
	secret string
	now    func() time.Time
	log    logging.LeveledLogger
	refuse func() // counts a refusal
}

// handle returns the user ID that quotas and ConnectionBind ownership use:
// the user name for long-term credentials, the part after the expiry for
// REST credentials (so minting a new expiry does not reset a user's quota),
// or the whole REST username when it names no user.
func (a *authenticator) handle(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	// The key binds the realm: a request naming another realm must fail,
	// and pion does not compare it.
	if ra.Realm != a.realm {
		a.log.Debugf("%v: realm %q, want %q", ra.SrcAddr, ra.Realm, a.realm)
		a.refuse()
		return "", nil, false
	}
	if pw, found := a.users[ra.Username]; found {
		return ra.Username, turn.GenerateAuthKey(ra.Username, a.realm, pw), true
	}
	if a.secret == "" {
		a.log.Debugf("%v: unknown user %q", ra.SrcAddr, ra.Username)
		a.refuse()
		return "", nil, false
	}
	if _, err := restcred.RESTExpiry(ra.Username, a.now()); err != nil {
		a.log.Debugf("%v: %v", ra.SrcAddr, err)
		a.refuse()
		return "", nil, false
	}
	pw := restcred.RESTPassword(a.secret, ra.Username)
	userID = ra.Username
	if _, user, found := strings.Cut(ra.Username, restcred.RESTSeparator); found && user != "" {
		userID = user
	}
	return userID, turn.GenerateAuthKey(ra.Username, a.realm, pw), true
}
