package turn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/stun/v4"
)

// Sentinels for what callers branch on; an *Error matches them with
// errors.Is according to its STUN error code.
var (
	// ErrUnauthorized: 401 Unauthorized to a request that carried
	// credentials, or 441 Wrong Credentials (RFC 8489 §9.2, RFC 8656).
	// Expired REST credentials end here too (and also match ErrRESTExpired).
	ErrUnauthorized = errors.New("turn: unauthorized")
	// ErrQuota: 486 Allocation Quota Reached.
	ErrQuota = errors.New("turn: allocation quota reached")
	// ErrForbidden: 403, the server refuses this peer address.
	ErrForbidden = errors.New("turn: forbidden")
	// ErrConnectFailed: 447 Connection Timeout or Failure (RFC 6062):
	// the server could not open a TCP connection to the peer.
	ErrConnectFailed = errors.New("turn: connection to peer failed")
	// ErrUnsupportedTransport: 442, the server does not relay TCP.
	ErrUnsupportedTransport = errors.New("turn: unsupported transport protocol")
	// ErrAllocationMismatch: 437, the server has no such allocation.
	ErrAllocationMismatch = errors.New("turn: allocation mismatch")
	// ErrAllocationLost: the allocation ended without Close: the server
	// closed the control connection, a refresh failed or it expired.
	ErrAllocationLost = errors.New("turn: allocation lost")
)

// Error is a failed TURN operation.
type Error struct {
	Op     string // "allocate", "connect", "bind", "permit", "refresh", "accept", "read", "control"
	Server string // the server, host:port
	Code   int    // the STUN ERROR-CODE of the server's answer; 0 when there was none
	Reason string // the server's reason phrase
	Err    error  // the cause, when not only the error response

	lost bool // the allocation is gone (matches ErrAllocationLost)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("turn: ")
	b.WriteString(e.Op)
	if e.Server != "" {
		b.WriteString(" ")
		b.WriteString(e.Server)
	}
	if e.lost {
		b.WriteString(": allocation lost")
	}
	if e.Code != 0 {
		status := strings.TrimSpace(fmt.Sprintf("%d %s", e.Code, e.Reason))
		if w := codeWords(e.Code); w != "" {
			fmt.Fprintf(&b, ": %s (%s)", w, status)
		} else {
			b.WriteString(": " + status)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's error code, and ErrAllocationLost when the
// allocation is gone.
func (e *Error) Is(target error) bool {
	if e.lost && target == ErrAllocationLost {
		return true
	}
	k := codeSentinel(e.Code)
	return k != nil && target == k
}

// codeWords says what an error code means for the user, in words: the
// reason phrase servers send is often empty (a bare "401").
func codeWords(code int) string {
	switch stun.ErrorCode(code) {
	case stun.CodeUnauthorized, stun.CodeWrongCredentials:
		return "wrong TURN credentials"
	case stun.CodeStaleNonce:
		return "the server kept refusing our nonce (stale nonce)"
	case stun.CodeAllocQuotaReached:
		return "relay quota reached: the server allows this user no more allocations"
	case stun.CodeForbidden:
		return "forbidden by the server"
	case stun.CodeUnsupportedTransProto:
		return "the server does not relay TCP (RFC 6062)"
	case stun.CodeConnTimeoutOrFailure:
		return "the relay could not connect to the peer"
	case stun.CodeInsufficientCapacity:
		return "the server is out of capacity"
	}
	return ""
}

func codeSentinel(code int) error {
	switch stun.ErrorCode(code) {
	case stun.CodeUnauthorized, stun.CodeWrongCredentials:
		return ErrUnauthorized
	case stun.CodeAllocQuotaReached:
		return ErrQuota
	case stun.CodeForbidden:
		return ErrForbidden
	case stun.CodeConnTimeoutOrFailure:
		return ErrConnectFailed
	case stun.CodeUnsupportedTransProto:
		return ErrUnsupportedTransport
	case stun.CodeAllocMismatch:
		return ErrAllocationMismatch
	}
	return nil
}

// withOp is a copy of e for another operation, so that calls on a dead
// allocation say what they tried and why the allocation is gone.
func (e *Error) withOp(op string) *Error {
	c := *e
	c.Op = op
	return &c
}
