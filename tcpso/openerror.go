package tcpso

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// OpenError is returned when SimultaneousOpen gives up; it says what
// happened. The outcome counts add up to Attempts, except for an attempt cut
// short by ctx, which is counted in Attempts only.
type OpenError struct {
	Local, Remote                         netip.AddrPort
	Attempts                              int
	Refused, Unreachable, TimedOut, Other int   // counts per outcome; Other includes EADDRINUSE/EADDRNOTAVAIL
	Last                                  error // the last attempt's error (nil if none was made)
	Canceled                              bool  // ctx ended before the attempts were spent

	cause error // context.Cause of the ended ctx, so errors.Is(err, context.Canceled) works
}

// Error reads "tcpso: simultaneous open 10.0.0.1:5000->198.51.100.2:6000:
// 10 attempts (7 refused, 3 timed out): connect: connection refused".
func (e *OpenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tcpso: simultaneous open %s->%s: %d attempt", e.Local, e.Remote, e.Attempts)
	if e.Attempts != 1 {
		b.WriteByte('s')
	}
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{e.Refused, "refused"}, {e.Unreachable, "unreachable"}, {e.TimedOut, "timed out"}, {e.Other, "other"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(parts, ", "))
	}
	if e.Canceled {
		b.WriteString(", canceled")
	}
	switch {
	case e.Last != nil:
		b.WriteString(": ")
		b.WriteString(causeText(e.Last))
	case e.cause != nil:
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// Unwrap returns the last attempt's error and, when ctx ended, its cause, so
// both errors.Is(err, syscall.ECONNREFUSED) and errors.Is(err,
// context.Canceled) work.
func (e *OpenError) Unwrap() error {
	if e.cause == nil {
		return e.Last
	}
	return errors.Join(e.cause, e.Last)
}

// Reason is one word for tables: "canceled" if ctx ended first; otherwise
// "refused", "no-answer" (timeouts), "unreachable" or "other" when every
// counted attempt had that outcome, and "mixed" when they differ.
func (e *OpenError) Reason() string {
	if e.Canceled {
		return "canceled"
	}
	kinds, reason := 0, "mixed"
	for _, c := range []struct {
		n    int
		word string
	}{{e.Refused, "refused"}, {e.TimedOut, "no-answer"}, {e.Unreachable, "unreachable"}, {e.Other, "other"}} {
		if c.n > 0 {
			kinds++
			reason = c.word
		}
	}
	if kinds != 1 {
		return "mixed"
	}
	return reason
}

// count records one attempt's outcome.
func (e *OpenError) count(o outcome) {
	switch o {
	case outcomeRefused:
		e.Refused++
	case outcomeUnreachable:
		e.Unreachable++
	case outcomeTimedOut:
		e.TimedOut++
	default:
		e.Other++
	}
}
