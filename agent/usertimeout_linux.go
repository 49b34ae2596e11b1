package agent

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// setTCPUserTimeout sets TCP_USER_TIMEOUT: the kernel ends the connection
// when data stays unacknowledged for d (keepalive alone does not probe
// while data is outstanding, and retransmissions last ~15 minutes).
func setTCPUserTimeout(tc *net.TCPConn, d time.Duration) error {
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	}); err != nil {
		return err
	}
	return serr
}

// resetByPeer reports a connection the kernel closed on the peer's RST
// (TCP state CLOSE) rather than on its FIN (CLOSE_WAIT). Linux hands an
// RST's ECONNRESET to one call only: a writer that was in the kernel at
// the time takes it, and the reader then reads a plain EOF, which alone
// looks like the peer's orderly close.
func resetByPeer(tc *net.TCPConn) bool {
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	var state uint8
	if err := rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			state = info.State
		}
	}); err != nil {
		return false
	}
	return state == unix.BPF_TCP_CLOSE
}
