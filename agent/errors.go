package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/icetcp/icetcp/candidate"
)

var (
	// ErrClosed is returned by operations on a closed agent or connection.
	ErrClosed = errors.New("agent: closed")
	// ErrUnauthenticated means a check failed MESSAGE-INTEGRITY: the peer
	// does not know the ICE password (or we have the wrong one).
	ErrUnauthenticated = errors.New("agent: check not authenticated")
	// ErrConsentExpired means the peer stopped answering consent checks
	// (RFC 7675 §5.1): the selected connection may no longer be used.
	ErrConsentExpired = errors.New("agent: consent expired")
	// ErrPeerLeft means the peer left the signaling channel before the
	// agents connected.
	ErrPeerLeft = errors.New("agent: peer left")
	// ErrNoPeer means Connect's context ended before anything came from
	// the peer (neither its credentials nor a check): nobody joined the
	// signaling channel, or the peer never started. It is not a failure
	// of the checks; Connect's error is then a *FailedError whose Err
	// wraps ErrNoPeer and the context's error.
	ErrNoPeer = errors.New("agent: no peer joined")
	// ErrNoPairs means both sides finished gathering and no candidate
	// pair can be formed (e.g. both offer only active candidates).
	ErrNoPairs = errors.New("agent: no candidate pairs")
	// ErrAlreadyStarted is returned by a second call to Connect.
	ErrAlreadyStarted = errors.New("agent: Connect already called")
	// ErrPeerVanished means the connection of an icetcp peer ended without
	// its in-band end of stream: the peer crashed, was killed, or the path
	// broke. Read's error says how many bytes had arrived.
	ErrPeerVanished = errors.New("agent: peer vanished")
	// ErrPeerInterrupted means an icetcp peer stopped its stream on
	// purpose before its end (Conn.Abort: interrupted by its user, or a
	// failure on its side). Read's error says how many bytes had arrived.
	ErrPeerInterrupted = errors.New("agent: the peer interrupted the stream")
)

// PeerError is a STUN error response of the peer to one of our checks
// (RFC 8489 §14.8).
type PeerError struct {
	Code   int
	Reason string
}

func (e *PeerError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("agent: peer answered error %d", e.Code)
	}
	return fmt.Sprintf("agent: peer answered error %d (%s)", e.Code, e.Reason)
}

// CheckError is the failure of one candidate pair's check.
type CheckError struct {
	Local, Remote candidate.Candidate
	Err           error
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("agent: check %s -> %s: %v", addrOf(e.Local), addrOf(e.Remote), e.Err)
}

func (e *CheckError) Unwrap() error { return e.Err }

// FailedError is returned by Connect when no pair could be selected. It
// lists why each pair failed.
type FailedError struct {
	Reason string        // one line for humans and logs
	Checks []*CheckError // every pair that failed, highest priority first
	Err    error         // the cause that ended the attempt (timeout, peer left, ...), may be nil
}

func (e *FailedError) Error() string {
	return "agent: failed: " + e.Reason
}

func (e *FailedError) Unwrap() []error {
	errs := make([]error, 0, len(e.Checks)+1)
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	for _, c := range e.Checks {
		errs = append(errs, c)
	}
	return errs
}

// summarize says how each kind of pair failed, e.g. "4 pairs failed: so
// host→srflx: 2 no-answer; active host→passive srflx: 2 refused".
func summarize(checks []*CheckError) string {
	if len(checks) == 0 {
		return "no pair was checked"
	}
	type kind struct{ pair, cause string }
	counts := map[kind]int{}
	var order []kind
	for _, c := range checks {
		k := kind{pairKind(c.Local, c.Remote), causeWord(c.Err)}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	parts := make([]string, 0, len(order))
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s: %d %s", k.pair, counts[k], k.cause))
	}
	return fmt.Sprintf("%d pairs failed: %s", len(checks), strings.Join(parts, "; "))
}

// pairKind names a pair by its candidate types, e.g. "so host→srflx".
func pairKind(l, r candidate.Candidate) string {
	if l.TCPType == candidate.SO {
		return fmt.Sprintf("so %s→%s", l.Type, r.Type)
	}
	return fmt.Sprintf("%s %s→%s %s", l.TCPType, l.Type, r.TCPType, r.Type)
}

func addrOf(c candidate.Candidate) string {
	return fmt.Sprintf("%s %s %s", c.Type, c.TCPType, c.Addr)
}
