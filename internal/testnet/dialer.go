package testnet

import (
	"context"
	"net"
	"syscall"
	"time"
)

// Dialer dials from src (an IP; "" for any) with a 5 s timeout; its
// connections close without TIME_WAIT where the system allows it.
func Dialer(src string) *net.Dialer {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: noTimeWait}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	return d
}

// DialFrom dials addr over TCP from src.
func DialFrom(ctx context.Context, src, addr string) (net.Conn, error) {
	return Dialer(src).DialContext(ctx, "tcp", addr)
}

// noTimeWait asks for an abortive close (SO_LINGER on, zero seconds).
func noTimeWait(network, address string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) { serr = setLingerZero(fd) }); err != nil {
		return err
	}
	return serr
}
