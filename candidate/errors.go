package candidate

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel causes carried in ParseError.Err. They are exported where a
// caller has a reason to branch: skip a UDP line quietly, hand an mDNS name
// to a resolver, or reject an oversized message.
var (
	// ErrUnsupportedTransport: the line is not a TCP candidate (udp, ssltcp, ...).
	ErrUnsupportedTransport = errors.New("candidate: unsupported transport")
	// ErrFQDN: the address is a host name (for example an mDNS ".local" name), not an IP literal.
	ErrFQDN = errors.New("candidate: address is a name, not an IP literal")
	// ErrMissing: the line ended before a required field.
	ErrMissing = errors.New("candidate: missing value")
	// ErrTooLong: the line is longer than MaxLineLength.
	ErrTooLong = errors.New("candidate: line too long")

	errDuplicate  = errors.New("candidate: duplicate attribute")
	errOutOfRange = errors.New("candidate: out of range")
	errUnknown    = errors.New("candidate: unknown value")
	errSyntax     = errors.New("candidate: invalid syntax")
)

// ParseError names the field of a candidate line that is wrong, so a caller
// can log which part of a peer's line it could not use.
type ParseError struct {
	// Field is one of "line", "prefix", "foundation", "component",
	// "transport", "priority", "address", "port", "typ", "raddr", "rport",
	// "tcptype", "extension".
	Field string
	// Value is the offending token ("" when it is missing).
	Value string
	// Err is the cause; may be nil.
	Err error
}

func (e *ParseError) Error() string {
	msg := "candidate: bad " + e.Field + " " + quote(e.Value)
	if e.Err != nil {
		// Sentinels already carry the package prefix; do not repeat it.
		msg += ": " + strings.TrimPrefix(e.Err.Error(), "candidate: ")
	}
	return msg
}

// Unwrap returns the cause so errors.Is(err, ErrUnsupportedTransport) works.
func (e *ParseError) Unwrap() error { return e.Err }

// quote keeps error messages short and printable when a peer sends a huge
// or binary token.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
