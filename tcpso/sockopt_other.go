//go:build !linux && !darwin && !windows

package tcpso

import (
	"errors"
	"fmt"
	"syscall"
)

// portSharing is false: no port-sharing implementation for this system yet.
const portSharing = false

// controlReuse fails: sharing a fixed local port is not implemented here, so
// Listen and Dial with a fixed port return errors.ErrUnsupported rather than
// opening sockets that would collide.
func controlReuse(_, _ string, _ syscall.RawConn) error {
	return fmt.Errorf("tcpso: SO_REUSEPORT: %w", errors.ErrUnsupported)
}
