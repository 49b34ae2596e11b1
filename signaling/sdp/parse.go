package sdp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/icetcp/icetcp/signaling"
)

// MaxSize bounds the input of Parse and ParseSections. Real descriptions
// are a few KiB; the bound keeps a hostile peer from making us split
// megabytes.
const MaxSize = 256 << 10

// Errors. Parse errors are *ParseError values wrapping one of these, so
// compare with errors.Is.
var (
	// ErrTooLarge: the input is longer than MaxSize.
	ErrTooLarge = errors.New("sdp: description too large")
	// ErrInvalid: an ICE attribute is malformed, repeated or incomplete.
	ErrInvalid = errors.New("sdp: invalid ICE attribute")
)

// ParseError names the line of the input that is wrong (1-based), or the
// m-section (1-based) when the problem is a section as a whole, such as
// a=ice-ufrag without a=ice-pwd; both are 0 for the input as a whole (too
// large).
type ParseError struct {
	Line    int
	Text    string // the line, cut to 80 bytes
	Section int
	Err     error
}

func (e *ParseError) Error() string {
	// Err wraps a sentinel of this package: its "sdp: " is ours already.
	msg := strings.TrimPrefix(e.Err.Error(), "sdp: ")
	switch {
	case e.Line > 0:
		return fmt.Sprintf("sdp: line %d %q: %s", e.Line, e.Text, msg)
	case e.Section > 0:
		return fmt.Sprintf("sdp: section %d: %s", e.Section, msg)
	}
	return "sdp: " + msg
}

func (e *ParseError) Unwrap() error { return e.Err }

// RemoteError is what Channel.Recv returns, for good, after AddRemote was
// given SDP it could not use: the agent then fails at once (its peer's
// credentials will not come through this Channel) instead of waiting for
// its deadline. Err is AddRemote's own error, a *ParseError.
type RemoteError struct {
	Err error
}

func (e *RemoteError) Error() string {
	return "sdp: AddRemote could not use the remote description: " + strings.TrimPrefix(e.Err.Error(), "sdp: ")
}

func (e *RemoteError) Unwrap() error { return e.Err }

// Parse reads the ICE attributes of one media section out of a whole SDP
// description, an RFC 8840 trickle fragment, or loose attribute lines (one
// "a=candidate:..." or "candidate:..." line is enough). Lines may end in
// CRLF or LF; lines that are not ICE attributes are skipped, whatever they
// are.
//
// With several m-sections it picks the first that has a TCP candidate,
// else the first m-section (with BUNDLE every section but the first usually
// has no candidates of its own). Input without an m= line is one section.
// ICE attributes at session level (before the first m= line) apply to
// every section that does not set its own (RFC 8839 §5.4).
//
// Credentials are checked against the signaling schema (ufrag 4–256 and pwd
// 22–256 ICE characters); a section that has one of them but not the other
// is an error. Candidate lines are only checked to be single printable
// lines of at most signaling.MaxCandidateLen bytes: package candidate
// parses them.
func Parse(s string) (Attributes, error) {
	secs, err := ParseSections(s)
	if err != nil {
		return Attributes{}, err
	}
	for _, a := range secs {
		if len(a.TCPCandidates()) > 0 {
			return a, nil
		}
	}
	return secs[0], nil
}

// ParseSections is Parse for every section: one Attributes per m-section in
// order, with session-level attributes inherited, or a single one for input
// without an m= line. It never returns an empty slice without an error.
func ParseSections(s string) ([]Attributes, error) {
	if len(s) > MaxSize {
		return nil, &ParseError{Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(s), MaxSize)}
	}
	var (
		session sectionState
		media   []*sectionState
		cur     = &session
	)
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.HasPrefix(line, "m=") {
			cur = &sectionState{}
			media = append(media, cur)
			continue
		}
		if err := cur.line(line); err != nil {
			return nil, &ParseError{Line: i + 1, Text: cut(line), Err: err}
		}
	}
	if len(media) == 0 {
		media = []*sectionState{&session}
	}
	out := make([]Attributes, 0, len(media))
	for i, m := range media {
		a := m.attrs
		if m != &session {
			a = inherit(session.attrs, a)
		}
		if err := validate(a); err != nil {
			return nil, &ParseError{Section: i + 1, Err: err}
		}
		out = append(out, a)
	}
	return out, nil
}

// sectionState collects one section's attributes and notes repeats.
type sectionState struct {
	attrs        Attributes
	ufrag, pwd   bool
	optionsFound bool
}

// line takes one line of the section; lines that are not ICE attributes
// are skipped.
func (s *sectionState) line(line string) error {
	if strings.HasPrefix(line, "candidate:") { // a bare trickle line
		line = "a=" + line
	}
	attr, ok := strings.CutPrefix(line, "a=")
	if !ok {
		return nil
	}
	name, value, hasValue := strings.Cut(attr, ":")
	switch name {
	case "ice-ufrag":
		return setOnce(&s.ufrag, &s.attrs.Ufrag, name, strings.TrimSpace(value))
	case "ice-pwd":
		return setOnce(&s.pwd, &s.attrs.Pwd, name, strings.TrimSpace(value))
	case "ice-options":
		if s.optionsFound {
			return fmt.Errorf("%w: a=ice-options repeated", ErrInvalid)
		}
		s.optionsFound = true
		s.attrs.Options = strings.Fields(value)
		if len(s.attrs.Options) == 0 {
			return fmt.Errorf("%w: a=ice-options without a token", ErrInvalid)
		}
	case "ice-lite":
		s.attrs.Lite = true
	case "end-of-candidates":
		s.attrs.EndOfCandidates = true
	case "mid":
		s.attrs.Mid = strings.TrimSpace(value)
	case "candidate":
		if !hasValue || strings.TrimSpace(value) == "" {
			return fmt.Errorf("%w: empty a=candidate", ErrInvalid)
		}
		c := "candidate:" + strings.TrimSpace(value)
		if err := checkCandidate(c); err != nil {
			return err
		}
		s.attrs.Candidates = append(s.attrs.Candidates, c)
	}
	return nil
}

func setOnce(seen *bool, field *string, name, value string) error {
	if *seen {
		return fmt.Errorf("%w: a=%s repeated", ErrInvalid, name)
	}
	if value == "" {
		return fmt.Errorf("%w: empty a=%s", ErrInvalid, name)
	}
	*seen, *field = true, value
	return nil
}

// inherit fills a section's unset credentials and options from the
// session level.
func inherit(session, a Attributes) Attributes {
	if a.Ufrag == "" && a.Pwd == "" {
		a.Ufrag, a.Pwd = session.Ufrag, session.Pwd
	}
	if len(a.Options) == 0 {
		a.Options = session.Options
	}
	a.Lite = a.Lite || session.Lite
	return a
}

// validate checks the credentials against the signaling schema, so that
// what Parse accepts the Channel can always pass to the agent.
func validate(a Attributes) error {
	switch {
	case a.Ufrag == "" && a.Pwd == "":
		return nil
	case a.Pwd == "":
		return fmt.Errorf("%w: a=ice-ufrag without a=ice-pwd (the two come together, in one description, fragment or AddRemote call)", ErrInvalid)
	case a.Ufrag == "":
		return fmt.Errorf("%w: a=ice-pwd without a=ice-ufrag (the two come together, in one description, fragment or AddRemote call)", ErrInvalid)
	}
	if _, err := signaling.Encode(signaling.Message{Type: signaling.TypeCredentials, Ufrag: a.Ufrag, Pwd: a.Pwd}); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, schemaErr(err))
	}
	return nil
}

// checkCandidate applies the signaling schema's rules for candidate lines.
func checkCandidate(c string) error {
	if _, err := signaling.Encode(signaling.Message{Type: signaling.TypeCandidate, Candidate: c}); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, schemaErr(err))
	}
	return nil
}

// schemaErr is the schema's own complaint, without the "signaling:
// encode:" of a message we never meant to encode.
func schemaErr(err error) error {
	var me *signaling.MessageError
	if errors.As(err, &me) {
		return me
	}
	return err
}

func cut(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
