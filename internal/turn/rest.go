package turn

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RESTSeparator separates the expiry from the user name in a TURN REST
// username (coturn's --rest-api-separator default).
const RESTSeparator = ":"

// RESTCredentials mints time-limited TURN credentials the way WebRTC
// deployments do (draft-uberti-behave-turn-rest, coturn
// --use-auth-secret): the username is "<expiry unix seconds>:<user>" and
// the password base64(HMAC-SHA1(secret, username)). Whoever knows the
// secret can mint them; the TURN server checks the HMAC and the expiry.
func RESTCredentials(secret, user string, expiry time.Time) (username, password string) {
	username = strconv.FormatInt(expiry.Unix(), 10)
	if user != "" {
		username += RESTSeparator + user
	}
	return username, RESTPassword(secret, username)
}

// RESTPassword is base64(HMAC-SHA1(secret, username)).
func RESTPassword(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ErrRESTExpired means a REST username's expiry has passed.
var ErrRESTExpired = errors.New("turn: REST credentials expired")

// RESTExpiry parses the expiry of a REST username ("<unix seconds>" or
// "<unix seconds>:<user>") and checks it against now.
func RESTExpiry(username string, now time.Time) (time.Time, error) {
	ts, _, _ := strings.Cut(username, RESTSeparator)
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, fmt.Errorf("turn: REST username %q does not start with an expiry in unix seconds", username)
	}
	exp := time.Unix(secs, 0)
	if !now.Before(exp) {
		return exp, fmt.Errorf("%w at %s", ErrRESTExpired, exp.UTC().Format(time.RFC3339))
	}
	return exp, nil
}
