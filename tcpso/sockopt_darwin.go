package tcpso

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// portSharing: SO_REUSEPORT lets a listener and dialers share a port.
const portSharing = true

// controlReuse sets SO_REUSEADDR and SO_REUSEPORT before bind. On Darwin
// (BSD semantics) SO_REUSEPORT on every socket of the port allows a listener
// and connected sockets to share it; SO_REUSEADDR covers TIME_WAIT leftovers.
func controlReuse(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
			serr = fmt.Errorf("tcpso: set SO_REUSEADDR: %w", serr)
			return
		}
		if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); serr != nil {
			serr = fmt.Errorf("tcpso: set SO_REUSEPORT: %w", serr)
		}
	})
	if err != nil {
		return fmt.Errorf("tcpso: socket control: %w", err)
	}
	return serr
}
