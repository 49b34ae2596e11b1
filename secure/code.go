package secure

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	_ "embed" // the code words
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/icetcp/icetcp/signaling"
)

// A Code is what a person reads aloud to another: a number and three
// words,
//
//	7-purple-canal-ozone
//
// The number and the first word (the nameplate, "7-purple") name the
// rendezvous room, which the rendezvous sees; the whole code is the
// password of a PAKE (ExchangeCode), which gives someone who does not hold
// it one guess per exchange and nothing to test offline, so the last two
// words are enough: 2 × 11.5 bits, a chance of one in 8 million per guess,
// and a guess that fails ends the exchange (the sender makes a new code).
// The nameplate's 21 bits keep concurrent codes on one rendezvous in
// rooms of their own.
//
// Words come from a list of 2,848 (the EFF's long list, words of 3 to 6
// letters); ParseCode ignores case and takes hyphens, spaces and dots
// between the parts.
type Code struct {
	n     int
	words [codeWords]string
}

const (
	codeWords   = 3
	maxCodeNum  = 999
	maxCodeLen  = 128 // bytes ParseCode looks at
	kdfCodeSalt = "icetcp code v1"
	kdfCodeRoom = "icetcp code room key v1"
	kdfCodePake = "icetcp code pake password v1"
)

//go:embed words.txt
var wordsFile string

// codeWordList is the sorted word list.
var codeWordList = sync.OnceValue(func() []string {
	var out []string
	for _, l := range strings.Split(wordsFile, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
})

// NewCode returns a fresh random code from crypto/rand.
func NewCode() Code {
	words := codeWordList()
	c := Code{n: 1 + randInt(maxCodeNum)}
	for i := range c.words {
		c.words[i] = words[randInt(len(words))]
	}
	return c
}

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil { // crypto/rand does not fail (Go 1.24+)
		panic(err)
	}
	return int(v.Int64())
}

// ParseCode reads a code as a person typed it. It refuses anything that
// is not a number from 1 to 999 and three words of the list, with an error
// wrapping ErrInvalidCode that says which part is wrong (and the nearest
// word, for a typo).
func ParseCode(s string) (Code, error) {
	if len(s) > maxCodeLen {
		return Code{}, fmt.Errorf("%w: %d bytes, a code is a number and %d words", ErrInvalidCode, len(s), codeWords)
	}
	parts := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == '-' || r == ' ' || r == '.' || r == '\t' })
	if len(parts) != 1+codeWords {
		return Code{}, fmt.Errorf("%w: %d parts, want a number and %d words, like 7-purple-canal-ozone", ErrInvalidCode, len(parts), codeWords)
	}
	n, err := strconv.Atoi(parts[0])
	if err != nil || n < 1 || n > maxCodeNum {
		return Code{}, fmt.Errorf("%w: %q is not a number from 1 to %d", ErrInvalidCode, parts[0], maxCodeNum)
	}
	c := Code{n: n}
	words := codeWordList()
	for i, w := range parts[1:] {
		if _, ok := slices.BinarySearch(words, w); !ok {
			hint := ""
			if near := nearestWord(w, words); near != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", near)
			}
			return Code{}, fmt.Errorf("%w: word %d %q is not a code word%s", ErrInvalidCode, i+1, w, hint)
		}
		c.words[i] = w
	}
	return c, nil
}

// String is the code as people exchange it: the password itself, do not
// log it.
func (c Code) String() string {
	if !c.Valid() {
		return ""
	}
	return strconv.Itoa(c.n) + "-" + strings.Join(c.words[:], "-")
}

// Valid reports whether c came from NewCode or ParseCode.
func (c Code) Valid() bool { return c.n != 0 }

// nameplate is the part of the code that names the room.
func (c Code) nameplate() string { return strconv.Itoa(c.n) + "-" + c.words[0] }

// RoomKey is the Ed25519 key of the rendezvous room of c, from its
// nameplate (the number and the first word) through HKDF-SHA256: the
// rendezvous admits to the room only clients that prove the key, like
// the room of a Secret. Unlike a Secret's, the nameplate is small enough
// for the rendezvous to find from the room's name: the code's strength is
// in its other words, which only the PAKE uses.
func (c Code) RoomKey() ed25519.PrivateKey {
	if !c.Valid() {
		panic("secure: use of a zero Code")
	}
	seed, err := hkdf.Key(sha256.New, []byte(c.nameplate()), []byte(kdfCodeSalt), kdfCodeRoom, ed25519.SeedSize)
	if err != nil {
		panic(err)
	}
	return ed25519.NewKeyFromSeed(seed)
}

// RoomName is the rendezvous room of c: the room of RoomKey's public key.
func (c Code) RoomName() string {
	return signaling.RoomForKey(c.RoomKey().Public().(ed25519.PublicKey))
}

// password is the PAKE's password: the whole code, hashed to a scalar's
// length under a label of its own.
func (c Code) password() []byte {
	k, err := hkdf.Key(sha256.New, []byte(c.String()), []byte(kdfCodeSalt), kdfCodePake, 32)
	if err != nil {
		panic(err)
	}
	return k
}

// nearestWord is the list word within two edits of w, the closest first;
// "" if there is none.
func nearestWord(w string, words []string) string {
	best, bestD := "", 3
	for _, x := range words {
		if d := editDistance(w, x, bestD); d < bestD {
			best, bestD = x, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or limit when it
// is at least limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
