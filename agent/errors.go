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
	// ErrNoPairs means both sides finished gathering and no candidate
	// pair can be formed (e.g. both offer only active candidates).
	ErrNoPairs = errors.New("agent: no candidate pairs")
	// ErrAlreadyStarted is returned by a second call to Connect.
	ErrAlreadyStarted = errors.New("agent: Connect already called")
)

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

// summarize counts the check failures by cause for FailedError.Reason.
func summarize(checks []*CheckError) string {
	if len(checks) == 0 {
		return "no pair was checked"
	}
	counts := map[string]int{}
	var order []string
	for _, c := range checks {
		k := causeWord(c.Err)
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	parts := make([]string, 0, len(order))
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return fmt.Sprintf("%d pairs failed (%s)", len(checks), strings.Join(parts, ", "))
}

func addrOf(c candidate.Candidate) string {
	return fmt.Sprintf("%s %s %s", c.Type, c.TCPType, c.Addr)
}
