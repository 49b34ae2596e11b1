//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly && !windows

package tcpso

import (
	"errors"
	"fmt"
	"syscall"
)

// portSharing is false: no port-sharing implementation for this system
// (illumos, AIX, Plan 9, js/wasm, ...).
const portSharing = false

// controlReuse fails: sharing a fixed local port is not implemented here, so
// a shared Listen and a Dial from a fixed port return errors.ErrUnsupported
// rather than opening sockets that would collide. A plain listener
// (ListenConfig{}) works.
func controlReuse(_, _ string, _ syscall.RawConn) error {
	return fmt.Errorf("tcpso: SO_REUSEPORT: %w", errors.ErrUnsupported)
}
