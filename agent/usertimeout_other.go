//go:build !linux

package agent

import (
	"errors"
	"net"
	"time"
)

// setTCPUserTimeout: TCP_USER_TIMEOUT is Linux's; elsewhere only keepalive
// watches a connection whose consent checks stopped.
func setTCPUserTimeout(*net.TCPConn, time.Duration) error { return errors.ErrUnsupported }

// resetByPeer: without Linux's TCP_INFO only a write's ECONNRESET tells a
// reset from the peer's FIN (pconn.sawReset).
func resetByPeer(*net.TCPConn) bool { return false }
