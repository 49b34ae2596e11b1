//go:build unix

package tcpso

import (
	"errors"
	"syscall"
)

// classifyErrno maps a connect() errno to an outcome.
func classifyErrno(err error) (Outcome, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.ECONNRESET:
		return OutcomeRefused, true
	case syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.ENETDOWN:
		return OutcomeUnreachable, true
	case syscall.ETIMEDOUT:
		return OutcomeTimedOut, true
	case syscall.EADDRINUSE, syscall.EADDRNOTAVAIL:
		return OutcomeBusy, true
	}
	return OutcomeFatal, true
}
