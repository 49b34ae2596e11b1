package signaling

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/icetcp/icetcp/internal/quote"
)

// Version is the schema version this package speaks. A peer that sends any
// other version is rejected with ErrVersion rather than half-understood.
const Version = 1

// MaxMessageSize bounds one encoded message. Real messages are a few hundred
// bytes; the bound keeps a hostile peer from making us buffer megabytes.
const MaxMessageSize = 64 << 10

// Field limits. Every string field is bounded whatever the message type, so
// that a decoded message always re-encodes well under MaxMessageSize even
// when every byte needs a \u00XX escape.
const (
	MinUfragLen     = 4    // RFC 8445 §5.3: ufrag at least 4 ICE-chars
	MaxUfragLen     = 256  // RFC 8445 §5.3
	MinPwdLen       = 22   // RFC 8445 §5.3: pwd at least 22 ICE-chars (128 bits)
	MaxPwdLen       = 256  // RFC 8445 §5.3
	MaxCandidateLen = 1024 // bytes of one candidate line
	MaxReasonLen    = 1024 // bytes of Reason
	MaxCodeLen      = 64   // bytes of Code
	MaxRoleLen      = 32   // bytes of Role; only two values are valid anyway
	MaxPunchDelayMs = 60000
	MaxFeatures     = 16  // entries of Features
	MaxFeatureLen   = 32  // bytes of one feature name
	MaxNATLen       = 256 // bytes of NAT
	MaxConfirmLen   = 64  // bytes of Confirm.Nonce and Confirm.MAC
	MaxPakeLen      = 256 // bytes of Pake.Msg
)

// Type names a message kind.
type Type string

// Message types. PeerLeft and Error are produced by the rendezvous (or by an
// in-memory Channel) and never sent by agents.
const (
	TypeCredentials     Type = "credentials"       // Ufrag, Pwd, Tiebreaker, Role
	TypeCandidate       Type = "candidate"         // Candidate
	TypeEndOfCandidates Type = "end-of-candidates" // no fields
	TypeBye             Type = "bye"               // Reason optional
	TypePunch           Type = "punch"             // Punch
	TypeNAT             Type = "nat"               // NAT: the sender's NAT class (natcheck), added to v1
	TypeConfirm         Type = "confirm"           // Confirm: the peers of a secret prove it to each other before their credentials, added to v1
	TypePake            Type = "pake"              // Pake: the peers of a short code agree on a key (before confirm), added to v1
	// TypeChecksDone (no fields, added to v1): the sender has nothing left
	// to try on its own (every pair it checks failed): a peer that is done
	// too can give up at once instead of guessing from silence. Sent only
	// to peers whose Features name "icetcp-done".
	TypeChecksDone Type = "checks-done"
	TypePeerLeft   Type = "peer-left" // rendezvous only
	TypeError      Type = "error"     // rendezvous only: Code, Reason
)

// Roles in a credentials message. An empty role leaves the decision to the
// tie-breaker (RFC 8445 §6.1.1).
const (
	RoleControlling = "controlling"
	RoleControlled  = "controlled"
)

// Punch phases.
const (
	PunchPing = "ping"
	PunchPong = "pong"
	PunchGo   = "go"
)

// Message is one signaling message. Which fields matter depends on Type.
type Message struct {
	V          int    `json:"v"`
	Type       Type   `json:"type"`
	Ufrag      string `json:"ufrag,omitempty"`
	Pwd        string `json:"pwd,omitempty"`
	Tiebreaker uint64 `json:"tiebreaker,omitempty,string"`
	Role       string `json:"role,omitempty"`
	// Features (credentials, optional) names the extensions the sender
	// supports, like ICE options in SDP (RFC 8445 §5.6.3): the two agents
	// use those both name. Receivers ignore names they do not know, and
	// peers that predate the field send none.
	Features []string `json:"features,omitempty"`
	// NAT (type nat) is the sender's NAT behaviour in natcheck's text form;
	// receivers that do not know the type skip the message.
	NAT       string   `json:"nat,omitempty"`
	Candidate string   `json:"candidate,omitempty"`
	Punch     *Punch   `json:"punch,omitempty"`
	Confirm   *Confirm `json:"confirm,omitempty"`
	Pake      *Pake    `json:"pake,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	// Code is set on TypeError messages: one of the Code* constants.
	Code string `json:"code,omitempty"`
}

// Punch measures the signaling round trip. The controlling agent sends
// Phase "ping" (Seq n); the other answers "pong" with the same Seq at once,
// and the first sizes with it how long a working relayed pair waits for a
// direct one. Phase "go" with DelayMs (RTT/2) was the synchronised start
// of a tcp-so attempt in earlier agents: it is valid and ignored.
type Punch struct {
	Seq     uint32 `json:"seq"`
	Phase   string `json:"phase"`
	DelayMs uint32 `json:"delay_ms,omitempty"`
}

// Confirm (type confirm) is one step of a key confirmation between the two
// peers of a shared secret, before either sends its ICE credentials
// (secure.ConfirmPeer): each sends its fresh Nonce, then answers
// the other's with To (that nonce) and a MAC over both under a key derived
// from the secret. Nonce is always set; To and MAC go together. Values are
// unpadded base64url of at most MaxConfirmLen characters. Receivers that
// do not know the type skip the message.
type Confirm struct {
	Nonce string `json:"nonce"`
	To    string `json:"to,omitempty"`
	MAC   string `json:"mac,omitempty"`
}

// Pake (type pake) is one message of the password-authenticated key
// exchange two peers of a short code run before their key confirmation
// (secure.ExchangeCode): From names the side that sent it ("maker" for the
// side that made the code, "taker" for the side that typed it) and Msg is
// its key share, unpadded base64url of at most MaxPakeLen characters.
// Receivers that do not know the type skip the message.
type Pake struct {
	From string `json:"from"`
	Msg  string `json:"msg"`
}

// Pake sides.
const (
	PakeMaker = "maker"
	PakeTaker = "taker"
)

// FromAgent reports whether agents may send messages of type t; peer-left
// and error are produced by the rendezvous only.
func (t Type) FromAgent() bool {
	switch t {
	case TypeCredentials, TypeCandidate, TypeEndOfCandidates, TypeBye, TypePunch, TypeNAT, TypeConfirm, TypePake, TypeChecksDone:
		return true
	}
	return false
}

func (t Type) known() bool {
	return t.FromAgent() || t == TypePeerLeft || t == TypeError
}

// Encode validates m and returns its JSON form. A zero V is taken as Version,
// so callers need not set it.
func Encode(m Message) ([]byte, error) {
	if m.V == 0 {
		m.V = Version
	}
	if m.V != Version {
		return nil, fmt.Errorf("%w: encode v=%d, this side speaks %d", ErrVersion, m.V, Version)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("signaling: encode: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("signaling: encode: %w", err)
	}
	if len(b) > MaxMessageSize { // unreachable with the field limits; kept as a guard
		return nil, fmt.Errorf("%w: encoded %d bytes, limit %d", ErrTooLarge, len(b), MaxMessageSize)
	}
	return b, nil
}

// missingV marks "no v field": json.Unmarshal leaves absent fields untouched.
const missingV = math.MinInt

// Decode parses and validates one message: at most MaxMessageSize bytes, a
// JSON object, V equal to Version (ErrVersion otherwise), a known Type and
// the fields that type needs. Unknown JSON fields are ignored. Validation
// failures are *MessageError values (errors.Is ErrInvalidMessage).
func Decode(b []byte) (Message, error) {
	if len(b) > MaxMessageSize {
		return Message{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxMessageSize)
	}
	// json.Unmarshal accepts null into a struct as a no-op; insist on an object.
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Message{}, fmt.Errorf("signaling: decode: %w", invalid("", "not a JSON object"))
	}
	m := Message{V: missingV}
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("signaling: decode: %w: %w", invalid("", "bad JSON"), err)
	}
	switch {
	case m.V == missingV:
		return Message{}, fmt.Errorf("signaling: decode: %w", invalid("", "missing v"))
	case m.V != Version:
		return Message{}, fmt.Errorf("%w: got v=%d, this side speaks %d", ErrVersion, m.V, Version)
	}
	if err := m.validate(); err != nil {
		return Message{}, fmt.Errorf("signaling: decode: %w", err)
	}
	return m, nil
}

// validate checks the type, the fields the type needs, and the length bound
// of every string field.
func (m *Message) validate() error {
	if !m.Type.known() {
		if m.Type == "" {
			return invalid("", "missing type")
		}
		return invalid("", "unknown type %s", quote.Short(string(m.Type)))
	}
	t := m.Type
	for _, f := range []struct {
		name string
		val  string
		max  int
	}{
		{"ufrag", m.Ufrag, MaxUfragLen},
		{"pwd", m.Pwd, MaxPwdLen},
		{"role", m.Role, MaxRoleLen},
		{"candidate", m.Candidate, MaxCandidateLen},
		{"reason", m.Reason, MaxReasonLen},
		{"code", m.Code, MaxCodeLen},
		{"nat", m.NAT, MaxNATLen},
	} {
		if len(f.val) > f.max {
			return invalid(t, "%s %s longer than %d", f.name, quote.Short(f.val), f.max)
		}
		// json.Marshal would silently turn invalid UTF-8 into U+FFFD and
		// the peer would see a different string than the one we validated.
		if !utf8.ValidString(f.val) {
			return invalid(t, "%s %s is not valid UTF-8", f.name, quote.Short(f.val))
		}
	}
	if len(m.Features) > MaxFeatures {
		return invalid(t, "%d features, limit %d", len(m.Features), MaxFeatures)
	}
	for _, f := range m.Features {
		if !validFeature(f) {
			return invalid(t, "feature %s is not 1-%d characters of [a-z0-9-]", quote.Short(f), MaxFeatureLen)
		}
	}
	switch t {
	case TypeCredentials:
		if err := checkICEChars(t, "ufrag", m.Ufrag, MinUfragLen); err != nil {
			return err
		}
		if err := checkICEChars(t, "pwd", m.Pwd, MinPwdLen); err != nil {
			return err
		}
		switch m.Role {
		case "", RoleControlling, RoleControlled:
		default:
			return invalid(t, "role %s is not %q, %q or empty", quote.Short(m.Role), RoleControlling, RoleControlled)
		}
	case TypeCandidate:
		if m.Candidate == "" {
			return invalid(t, "empty candidate")
		}
		for i := 0; i < len(m.Candidate); i++ {
			if c := m.Candidate[i]; c < 0x20 || c == 0x7f {
				// Candidate lines travel inside SDP, where CR/LF end the line
				// and other controls are never valid.
				return invalid(t, "candidate %s contains control character %#02x", quote.Short(m.Candidate), c)
			}
		}
	case TypeNAT:
		if m.NAT == "" {
			return invalid(t, "empty nat")
		}
		for i := 0; i < len(m.NAT); i++ {
			if c := m.NAT[i]; c < 0x20 || c > 0x7e {
				return invalid(t, "nat %s contains byte %#02x (printable ASCII only)", quote.Short(m.NAT), c)
			}
		}
	case TypeConfirm:
		if m.Confirm == nil {
			return invalid(t, "missing confirm")
		}
		if m.Confirm.Nonce == "" || (m.Confirm.To == "") != (m.Confirm.MAC == "") {
			return invalid(t, "confirm needs a nonce, and to and mac together or neither")
		}
		for _, v := range []string{m.Confirm.Nonce, m.Confirm.To, m.Confirm.MAC} {
			if len(v) > MaxConfirmLen {
				return invalid(t, "confirm value %s longer than %d", quote.Short(v), MaxConfirmLen)
			}
			for i := 0; i < len(v); i++ {
				if c := v[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
					return invalid(t, "confirm value %s is not base64url", quote.Short(v))
				}
			}
		}
	case TypePake:
		if m.Pake == nil {
			return invalid(t, "missing pake")
		}
		if m.Pake.From != PakeMaker && m.Pake.From != PakeTaker {
			return invalid(t, "pake from %s is not %q or %q", quote.Short(m.Pake.From), PakeMaker, PakeTaker)
		}
		if m.Pake.Msg == "" || len(m.Pake.Msg) > MaxPakeLen || !base64URL(m.Pake.Msg) {
			return invalid(t, "pake msg %s is not 1-%d characters of base64url", quote.Short(m.Pake.Msg), MaxPakeLen)
		}
	case TypePunch:
		if m.Punch == nil {
			return invalid(t, "missing punch")
		}
		switch m.Punch.Phase {
		case PunchPing, PunchPong, PunchGo:
		default:
			return invalid(t, "phase %s is not %q, %q or %q", quote.Short(m.Punch.Phase), PunchPing, PunchPong, PunchGo)
		}
		if m.Punch.DelayMs > MaxPunchDelayMs {
			return invalid(t, "delay_ms %d above %d", m.Punch.DelayMs, MaxPunchDelayMs)
		}
	}
	return nil
}

func base64URL(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validFeature: 1..MaxFeatureLen characters of [a-z0-9-].
func validFeature(f string) bool {
	if len(f) == 0 || len(f) > MaxFeatureLen {
		return false
	}
	for i := 0; i < len(f); i++ {
		if c := f[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkICEChars enforces RFC 8445 §5.3: ice-char = ALPHA / DIGIT / "+" / "/".
func checkICEChars(t Type, name, s string, minLen int) error {
	if len(s) < minLen {
		return invalid(t, "%s %s shorter than %d", name, quote.Short(s), minLen)
	}
	for i := 0; i < len(s); i++ {
		if !isICEChar(s[i]) {
			return invalid(t, "%s %s has non-ICE character %q at %d", name, quote.Short(s), s[i], i)
		}
	}
	return nil
}

func isICEChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}
