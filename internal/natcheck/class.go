package natcheck

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The class string, version 1:
//
//	v1 mapping=eim port=preserve alloc=seq delta=2 syn=rst
//
// A version token ("v" and a number), then key=value tokens separated by
// single spaces. Keys: mapping (unknown|nonat|eim|adm|apdm), port
// (preserve|remap), alloc (unknown|preserve|seq|random), delta (a non-zero
// integer within ±65535, present with alloc=seq only), syn
// (unknown|rst|drop|pass). Readers ignore keys they do not know and read
// values they do not know as unknown, so later versions can add both.

// Bounds of ParseClass: it reads at most this many bytes and tokens.
const (
	maxClassLen    = 256
	maxClassTokens = 16
	maxTokenLen    = 32
	maxDelta       = 65535
)

// ErrBadClass is wrapped by ParseClass errors.
var ErrBadClass = errors.New("natcheck: bad class string")

// String is the stable text form, e.g. "v1 mapping=eim port=preserve
// alloc=preserve syn=rst". A Sequential class without a usable Delta is
// written as alloc=unknown, so String and ParseClass round-trip.
func (c Class) String() string {
	var b strings.Builder
	b.WriteString("v1 mapping=")
	b.WriteString(tokenOr(mappingTokens[:], uint8(c.Mapping)))
	if c.PortPreserving {
		b.WriteString(" port=preserve")
	} else {
		b.WriteString(" port=remap")
	}
	alloc := c.Allocation
	if alloc == Sequential && !validDelta(c.Delta) {
		alloc = AllocationUnknown
	}
	b.WriteString(" alloc=")
	b.WriteString(tokenOr(allocationTokens[:], uint8(alloc)))
	if alloc == Sequential {
		b.WriteString(" delta=")
		b.WriteString(strconv.Itoa(c.Delta))
	}
	b.WriteString(" syn=")
	b.WriteString(tokenOr(inboundTokens[:], uint8(c.InboundSYN)))
	return b.String()
}

// tokenOr is the token of v, or "unknown" for a value out of range.
func tokenOr(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return "unknown"
}

func validDelta(d int) bool { return d != 0 && d >= -maxDelta && d <= maxDelta }

// ParseClass reads a class string. It is strict about form: at most 256
// bytes and 16 tokens, single spaces, a version token v1..v9999 first,
// then key=value tokens of lower-case letters, digits and '-' (values may
// also hold '+'), each at most 32 bytes, no key twice. It is lenient about
// meaning: unknown keys are skipped, unknown values give Unknown, and a
// missing or bad delta makes alloc=seq Unknown.
func ParseClass(s string) (Class, error) {
	fail := func(format string, args ...any) (Class, error) {
		return Class{}, fmt.Errorf("%w: "+format, append([]any{ErrBadClass}, args...)...)
	}
	if len(s) > maxClassLen {
		return fail("%d bytes, limit %d", len(s), maxClassLen)
	}
	tokens := strings.Split(s, " ")
	if len(tokens) > maxClassTokens {
		return fail("%d tokens, limit %d", len(tokens), maxClassTokens)
	}
	if err := checkVersion(tokens[0]); err != nil {
		return fail("%v", err)
	}
	var c Class
	var alloc, delta string
	seen := make(map[string]bool, len(tokens))
	for _, tok := range tokens[1:] {
		key, val, ok := strings.Cut(tok, "=")
		if !ok {
			return fail("token %q is not key=value", tok)
		}
		if !isWord(key, false) || !isWord(val, true) {
			return fail("token %q has an empty or over-long part or a character outside [a-z0-9-+]", tok)
		}
		if seen[key] {
			return fail("key %q twice", key)
		}
		seen[key] = true
		switch key {
		case "mapping":
			c.Mapping = Mapping(lookup(mappingTokens[:], val))
		case "port":
			c.PortPreserving = val == "preserve"
		case "alloc":
			alloc = val
		case "delta":
			delta = val
		case "syn":
			c.InboundSYN = InboundSYN(lookup(inboundTokens[:], val))
		}
	}
	c.Allocation = Allocation(lookup(allocationTokens[:], alloc))
	if c.Allocation == Sequential {
		d, err := strconv.Atoi(delta)
		if err != nil || !validDelta(d) {
			c.Allocation = AllocationUnknown
		} else {
			c.Delta = d
		}
	}
	return c, nil
}

// checkVersion accepts "v" followed by 1 to 4 digits, not starting with 0.
func checkVersion(tok string) error {
	if len(tok) < 2 || len(tok) > 5 || tok[0] != 'v' || tok[1] == '0' {
		return fmt.Errorf("first token %q is not a version v1..v9999", tok)
	}
	for _, r := range tok[1:] {
		if r < '0' || r > '9' {
			return fmt.Errorf("first token %q is not a version v1..v9999", tok)
		}
	}
	return nil
}

// isWord: 1..maxTokenLen bytes of [a-z0-9-], plus '+' in values.
func isWord(s string, value bool) bool {
	if len(s) == 0 || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b >= 'a' && b <= 'z', b >= '0' && b <= '9', b == '-':
		case b == '+' && value:
		default:
			return false
		}
	}
	return true
}

// lookup is the index of tok in names, 0 (Unknown) when absent.
func lookup(names []string, tok string) uint8 {
	for i, n := range names {
		if n == tok {
			return uint8(i)
		}
	}
	return 0
}
