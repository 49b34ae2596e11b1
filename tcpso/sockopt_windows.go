package tcpso

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/windows"
)

// portSharing is false: without SO_REUSEPORT a listener and a dialer cannot
// share a port reliably (see the package documentation), so the agent must
// not offer S-O candidates here.
const portSharing = false

// controlReuse sets SO_REUSEADDR, the only sharing option Windows has. It
// lets a dialer bind a listener's port (server-reflexive gathering from a
// passive candidate works) but gives no defined delivery of an incoming SYN
// between the listener and other sockets on the port, and on Windows it
// also lets another process bind the same port: use ListenConfig{Shared:
// true} only where a dialer must share the port.
func controlReuse(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if serr = windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_REUSEADDR, 1); serr != nil {
			serr = fmt.Errorf("tcpso: set SO_REUSEADDR: %w", serr)
		}
	})
	if err != nil {
		return fmt.Errorf("tcpso: socket control: %w", err)
	}
	return serr
}
