//go:build unix

package tcpso

import (
	"errors"
	"syscall"
)

// classifyErrno maps a connect() errno to an outcome.
func classifyErrno(err error) (outcome, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.ECONNRESET:
		return outcomeRefused, true
	case syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.ENETDOWN:
		return outcomeUnreachable, true
	case syscall.ETIMEDOUT:
		return outcomeTimedOut, true
	case syscall.EADDRINUSE, syscall.EADDRNOTAVAIL:
		return outcomeBusy, true
	}
	return outcomeFatal, true
}
