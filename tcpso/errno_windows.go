package tcpso

import (
	"errors"
	"syscall"

	"golang.org/x/sys/windows"
)

// classifyErrno maps a ConnectEx error to an outcome. Winsock reports WSAE*
// codes, which do not match the syscall.E* values Go invents on Windows.
func classifyErrno(err error) (Outcome, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, false
	}
	switch errno {
	case windows.WSAECONNREFUSED, windows.WSAECONNRESET:
		return OutcomeRefused, true
	case windows.WSAEHOSTUNREACH, windows.WSAENETUNREACH, windows.WSAEHOSTDOWN, windows.WSAENETDOWN:
		return OutcomeUnreachable, true
	case windows.WSAETIMEDOUT:
		return OutcomeTimedOut, true
	case windows.WSAEADDRINUSE, windows.WSAEADDRNOTAVAIL:
		return OutcomeBusy, true
	}
	return OutcomeFatal, true
}
