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
