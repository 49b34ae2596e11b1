package sdp

import (
	"strings"
)

// Attributes is the ICE part of one SDP media section.
type Attributes struct {
	// Ufrag and Pwd are the ICE credentials (a=ice-ufrag, a=ice-pwd).
	Ufrag, Pwd string
	// Options are the a=ice-options tokens, such as "trickle".
	Options []string
	// Lite is set by a=ice-lite: the agent answers checks but never sends
	// them, so the full agent facing it must control.
	Lite bool
	// Candidates are candidate attribute values in order, each
	// "candidate:..." without the "a=" (the form WebRTC's trickle API and
	// signaling.Message use). Lines of every transport are kept.
	Candidates []string
	// EndOfCandidates is set by a=end-of-candidates: no more candidates
	// will come for this section.
	EndOfCandidates bool
	// Mid is the section's a=mid, "" when it has none. Parse fills it;
	// Marshal does not write it (the application owns its m-sections).
	Mid string
}

// HasOption reports whether the ice-options include opt (case-sensitive,
// as RFC 8839 §5.6 defines the tokens).
func (a Attributes) HasOption(opt string) bool {
	for _, o := range a.Options {
		if o == opt {
			return true
		}
	}
	return false
}

// TCPCandidates returns the candidates whose transport is TCP, in order.
func (a Attributes) TCPCandidates() []string {
	var out []string
	for _, c := range a.Candidates {
		if isTCP(c) {
			out = append(out, c)
		}
	}
	return out
}

// Lines returns a's attribute lines without line endings, in the order
// a=ice-lite, a=ice-ufrag, a=ice-pwd, a=ice-options, a=candidate...,
// a=end-of-candidates. Empty fields are left out; a candidate given without
// the "candidate:" prefix gets it.
func Lines(a Attributes) []string {
	var out []string
	if a.Lite {
		out = append(out, "a=ice-lite")
	}
	if a.Ufrag != "" {
		out = append(out, "a=ice-ufrag:"+a.Ufrag)
	}
	if a.Pwd != "" {
		out = append(out, "a=ice-pwd:"+a.Pwd)
	}
	if len(a.Options) > 0 {
		out = append(out, "a=ice-options:"+strings.Join(a.Options, " "))
	}
	for _, c := range a.Candidates {
		out = append(out, candidateLine(c))
	}
	if a.EndOfCandidates {
		out = append(out, "a=end-of-candidates")
	}
	return out
}

// Marshal returns Lines(a), each ended by CRLF (RFC 8866 §5), ready to be
// put into a media section.
func Marshal(a Attributes) string {
	var b strings.Builder
	for _, l := range Lines(a) {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return b.String()
}

// candidateLine is "a=candidate:..." for a value with or without the
// "candidate:" prefix.
func candidateLine(c string) string {
	return "a=candidate:" + strings.TrimPrefix(c, "candidate:")
}

// isTCP reports whether a candidate value's transport field is TCP. The
// full grammar is package candidate's business; here only the third field
// matters.
func isTCP(c string) bool {
	f := strings.Fields(strings.TrimPrefix(c, "candidate:"))
	return len(f) > 2 && strings.EqualFold(f[2], "tcp")
}

// Controlling reports whether the local agent controls, from the
// offer/answer exchange (RFC 8445 §6.1.1, RFC 8839 §3.1.2): a full agent
// facing a lite one controls; otherwise the offerer controls.
func Controlling(offerer, localLite, remoteLite bool) bool {
	if localLite != remoteLite {
		return remoteLite
	}
	return offerer
}
