package agent

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/quote"
)

// A predicted candidate travels as an ordinary server-reflexive tcp-so
// candidate line (RFC 6544 §4.5) with one extension attribute, which RFC
// 8839 §5.1 lets agents that do not know it ignore:
//
//	candidate:… TCP … 203.0.113.1 30017 typ srflx raddr 10.0.1.2 rport 41877 tcptype so icetcp-predict n1.3.8
//
// The value is a kind, a round number, the candidate's index in the round
// and the round's size: "n" (next) announces that our next connections
// after a sighting of the NAT's series will leave from these ports, index
// 1 the first; "r" (reply) answers the peer's round of that number: our
// connection toward the peer's port of that index left from this port.
// Only agents that agreed on icetcp-predict send or read them.

// extPredict is the extension attribute's name.
const extPredict = "icetcp-predict"

// Bounds of a prediction tag.
const (
	maxPredictRound  = 99
	maxPredictWindow = 32
)

// predictTag is the value of the extension.
type predictTag struct {
	reply        bool // "r": a reply to the peer's round; else "n": our next ports
	round        int  // 1..maxPredictRound
	index, count int  // 1 <= index <= count <= maxPredictWindow
}

var errBadPredictTag = errors.New("agent: bad " + extPredict + " value")

func (t predictTag) String() string {
	kind := "n"
	if t.reply {
		kind = "r"
	}
	return fmt.Sprintf("%s%d.%d.%d", kind, t.round, t.index, t.count)
}

// parsePredictTag reads "n1.3.8" or "r1.3.8": a kind letter, then three
// decimal numbers without sign or leading zero separated by dots, within
// the bounds above. Pure function.
func parsePredictTag(s string) (predictTag, error) {
	fail := func(why string) (predictTag, error) {
		return predictTag{}, fmt.Errorf("%w %s: %s", errBadPredictTag, quote.Short(s), why)
	}
	if len(s) < 6 || len(s) > 12 {
		return fail("wrong length")
	}
	var t predictTag
	switch s[0] {
	case 'n':
	case 'r':
		t.reply = true
	default:
		return fail("kind is not n or r")
	}
	parts := strings.Split(s[1:], ".")
	if len(parts) != 3 {
		return fail("want three numbers")
	}
	var nums [3]int
	for i, p := range parts {
		if p == "" || len(p) > 2 || p[0] < '1' || p[0] > '9' || (len(p) == 2 && (p[1] < '0' || p[1] > '9')) {
			return fail("want numbers of one or two decimal digits, not starting with 0")
		}
		nums[i], _ = strconv.Atoi(p)
	}
	t.round, t.index, t.count = nums[0], nums[1], nums[2]
	switch {
	case t.round > maxPredictRound:
		return fail(fmt.Sprintf("round above %d", maxPredictRound))
	case t.count > maxPredictWindow:
		return fail(fmt.Sprintf("window above %d", maxPredictWindow))
	case t.index > t.count:
		return fail("index beyond the window")
	}
	return t, nil
}

// predictedTag returns c's prediction tag: ok is false when c carries no
// extPredict; err names a malformed one, or one on a candidate that is not
// a server-reflexive tcp-so one.
func predictedTag(c candidate.Candidate) (t predictTag, ok bool, err error) {
	for _, e := range c.Ext {
		if e.Key != extPredict {
			continue
		}
		if ok {
			return predictTag{}, true, fmt.Errorf("%w: %s twice", errBadPredictTag, extPredict)
		}
		ok = true
		if t, err = parsePredictTag(e.Value); err != nil {
			return predictTag{}, true, err
		}
	}
	if ok && (c.Type != candidate.ServerReflexive || c.TCPType != candidate.SO) {
		return predictTag{}, true, fmt.Errorf("%w: on a %s %s candidate, want srflx so", errBadPredictTag, c.Type, c.TCPType)
	}
	return t, ok, nil
}
