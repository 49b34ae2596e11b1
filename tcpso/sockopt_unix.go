//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package tcpso

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// portSharing: SO_REUSEPORT lets a listener and dialers share a port.
const portSharing = true

// controlReuse sets SO_REUSEADDR and SO_REUSEPORT before bind. Every socket
// of the shared port needs SO_REUSEPORT, the listener included: Linux
// demands it of all of them, and on the BSDs and macOS it is what allows
// two bindings of one address and port. SO_REUSEADDR lets a new socket bind
// while old connections of the port are in TIME_WAIT.
//
// The kernel keeps the sockets apart by the full 4-tuple: an incoming SYN
// goes to a connecting socket of its exact 4-tuple first, to the listener
// otherwise.
func controlReuse(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) { serr = setReuse(int(fd)) })
	if err != nil {
		return fmt.Errorf("tcpso: socket control: %w", err)
	}
	return serr
}

func setReuse(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("tcpso: set SO_REUSEADDR: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fmt.Errorf("tcpso: set SO_REUSEPORT: %w", err)
	}
	return nil
}
