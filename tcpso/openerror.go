package tcpso

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Outcome is what one SYN of a simultaneous open met.
type Outcome int

const (
	// OutcomeConnected: the handshake completed (ours or, with a
	// Punch.Listener, the peer's SYN accepted there).
	OutcomeConnected Outcome = iota + 1
	// OutcomePrimed: a low-TTL SYN (Punch.PrimeTTL) was answered by ICMP
	// Time Exceeded from a router: our NATs saw it, the far NAT did not.
	OutcomePrimed
	// OutcomeRefused: RST, from the far NAT (no mapping yet) or host.
	OutcomeRefused
	// OutcomeUnreachable: ICMP unreachable, or no route.
	OutcomeUnreachable
	// OutcomeTimedOut: no answer within Schedule.AttemptTimeout.
	OutcomeTimedOut
	// OutcomeBusy: EADDRINUSE/EADDRNOTAVAIL, the 4-tuple is held by another
	// socket (a connection our listener accepted, or TIME_WAIT).
	OutcomeBusy
	// OutcomeCanceled: ctx ended while the SYN waited.
	OutcomeCanceled
	// OutcomeFatal: any other error; retrying will not help.
	OutcomeFatal
)

var outcomeNames = [...]string{"", "connected", "primed", "refused", "unreachable", "timed out", "busy", "canceled", "other"}

func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) || o == 0 {
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

// Try records one SYN of a simultaneous open (one connect(), or the
// peer's SYN accepted on Punch.Listener).
type Try struct {
	Attempt int           // the attempt (round) it belongs to, from 1
	At      time.Duration // when it started, from the punch's first SYN
	Primed  bool          // the SYN left with Punch.PrimeTTL
	Outcome Outcome
	Err     error // nil when connected
}

// Result is a successful simultaneous open.
type Result struct {
	Conn *net.TCPConn
	// Attempts is the attempt (round) that connected: 1 when the first
	// synchronised SYN exchange succeeded, which is what DCUtR-style
	// statistics count.
	Attempts int
	// SYNs is the number of SYNs (connect calls) made, the last included.
	SYNs int
	// Accepted reports that Conn came from Punch.Listener: the peer's SYN
	// reached our listener, not our connecting socket.
	Accepted bool
	// Tries are the first MaxTries SYNs and the last one (Omitted counts
	// the SYNs left out between them).
	Tries   []Try
	Omitted int
}

// MaxTries bounds the SYNs a Result or an OpenError lists one by one: a
// punch on a sub-millisecond path sends up to about a thousand per second
// until its deadline. The counts are kept for all of them.
const MaxTries = 256

// OpenError is returned when a simultaneous open gives up; it says what
// every SYN met. The counts add up to len(Tries)+Omitted, except for a SYN
// cut short by ctx, which is in Tries (OutcomeCanceled) and in no count.
type OpenError struct {
	Local, Remote netip.AddrPort
	// Attempts is the number of attempts (rounds) started, SYNs the number
	// of SYNs sent.
	Attempts, SYNs int
	// Counts per outcome. Other counts fatal errors only.
	Primed, Refused, Unreachable, TimedOut, Busy, Other int
	Last                                                error // the last SYN's error (nil if none was sent)
	Canceled                                            bool  // the caller canceled ctx
	// Expired reports that the punch ran until its deadline (ctx's, or
	// Schedule.Duration's) without connecting.
	Expired bool
	Tries   []Try
	// Omitted counts the SYNs not in Tries (between the first MaxTries
	// and the last).
	Omitted int

	cause  error         // context.Cause of the ended ctx, so errors.Is(err, context.Canceled) works
	rounds []roundCounts // per attempt, what its SYNs met (Tries may be cut short)
}

// roundCounts counts one attempt's SYNs by outcome.
type roundCounts [len(outcomeNames)]int

// Error reads "tcpso: simultaneous open 10.0.0.1:5000->198.51.100.2:6000:
// 2 attempts, 7 SYNs (6 refused, 1 timed out) [1: 6 refused | 2: 1 timed
// out]: connect: connection timed out".
func (e *OpenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tcpso: simultaneous open %s->%s: %s", e.Local, e.Remote, plural(e.Attempts, "attempt"))
	if e.SYNs != e.Attempts {
		fmt.Fprintf(&b, ", %s", plural(e.SYNs, "SYN"))
	}
	if s := e.countText(0); s != "" {
		fmt.Fprintf(&b, " (%s)", s)
	}
	if e.Attempts > 1 {
		var rounds []string
		for n := 1; n <= e.Attempts; n++ {
			if n == 3 && e.Attempts > 4 {
				rounds = append(rounds, "…")
				n = e.Attempts - 1
				continue
			}
			if s := e.countText(n); s != "" {
				rounds = append(rounds, fmt.Sprintf("%d: %s", n, s))
			}
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(rounds, " | "))
	}
	switch {
	case e.Canceled:
		b.WriteString(", canceled")
	case e.Expired:
		b.WriteString(", deadline passed")
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

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// countText summarises the outcomes of attempt n's SYNs (all SYNs when n
// is 0) as "6 refused, 1 timed out", in Outcome order.
func (e *OpenError) countText(n int) string {
	var counts roundCounts
	for i, r := range e.rounds {
		if n == 0 || i == n-1 {
			for o, c := range r {
				counts[o] += c
			}
		}
	}
	var parts []string
	for o, c := range counts {
		if c > 0 && Outcome(o) != OutcomeCanceled {
			parts = append(parts, fmt.Sprintf("%d %s", c, Outcome(o)))
		}
	}
	return strings.Join(parts, ", ")
}

// Unwrap returns the last SYN's error and, when ctx ended, its cause, so
// both errors.Is(err, syscall.ECONNREFUSED) and errors.Is(err,
// context.Canceled) work.
func (e *OpenError) Unwrap() error {
	if e.cause == nil {
		return e.Last
	}
	return errors.Join(e.cause, e.Last)
}

// Reason is one word for tables: "canceled" if the caller canceled ctx;
// otherwise (attempts capped, deadline passed, a fatal error) "refused",
// "no-answer" (timeouts, or no SYN sent before the deadline),
// "unreachable", "busy" or "other" when every counted SYN had that outcome
// (primed SYNs aside), and "mixed" when they differ.
func (e *OpenError) Reason() string {
	if e.Canceled {
		return "canceled"
	}
	kinds, reason := 0, "mixed"
	for _, c := range []struct {
		n    int
		word string
	}{{e.Refused, "refused"}, {e.TimedOut, "no-answer"}, {e.Unreachable, "unreachable"}, {e.Busy, "busy"}, {e.Other, "other"}} {
		if c.n > 0 {
			kinds++
			reason = c.word
		}
	}
	switch {
	case kinds == 0 && e.Expired:
		return "no-answer"
	case kinds != 1:
		return "mixed"
	}
	return reason
}

// record counts t and lists it in Tries.
func (e *OpenError) record(t Try) {
	e.add(t)
	switch t.Outcome {
	case OutcomePrimed:
		e.Primed++
	case OutcomeRefused:
		e.Refused++
	case OutcomeUnreachable:
		e.Unreachable++
	case OutcomeTimedOut:
		e.TimedOut++
	case OutcomeBusy:
		e.Busy++
	case OutcomeFatal:
		e.Other++
	}
}

// add counts t in its round and lists it in Tries: the first MaxTries
// SYNs, and after them one slot that always holds the latest.
func (e *OpenError) add(t Try) {
	for len(e.rounds) < t.Attempt {
		e.rounds = append(e.rounds, roundCounts{})
	}
	if t.Attempt > 0 && t.Outcome > 0 && int(t.Outcome) < len(outcomeNames) {
		e.rounds[t.Attempt-1][t.Outcome]++
	}
	if len(e.Tries) <= MaxTries {
		e.Tries = append(e.Tries, t)
		return
	}
	e.Tries[MaxTries] = t
	e.Omitted++
}
