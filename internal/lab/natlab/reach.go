package natlab

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// Reach is the outcome of a TCP connection attempt.
type Reach int

const (
	Connected Reach = iota
	Refused         // RST: connection refused
	TimedOut        // silence until the deadline
	Failed          // any other error
)

func (r Reach) String() string {
	return [...]string{"connected", "refused", "timed out", "failed"}[r]
}

func classify(err error) Reach {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT), isTimeout(err):
		return TimedOut
	default:
		return Failed
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
