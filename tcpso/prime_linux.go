package tcpso

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// primeSupported: Linux sends the SYN synchronously inside connect(), so a TTL
// set before connect() and reset right after it applies to the first SYN only.
const primeSupported = true

// settleSupported: a punch's SYNs go through dialPrimed (TTL 0: unchanged),
// whose wait asks the socket once more when its deadline passes.
const settleSupported = true

// aLongTimeAgo is a deadline in the past, to interrupt a pending wait.
var aLongTimeAgo = time.Unix(1, 0)

// dialPrimed makes one connect attempt whose first SYN carries IP TTL (IPv6
// hop limit) ttl (0: the system's, a plain connect). net.Dialer offers no
// hook between connect() and the wait for its answer, so the socket is
// driven by hand: non-blocking connect with the low TTL, TTL reset to the
// system default (-1), then a wait on the runtime poller until the
// handshake ends, and finally net.FileConn. Retransmitted SYNs and the
// handshake use the normal TTL.
//
// Unlike net.Dialer, the wait does not throw away a handshake that ended
// while this process was not running: on a busy host the deadline's wake-up
// and the poller's can come in either order, and a punch's short per-SYN
// deadline then closed a connection the peer already had (measured in the
// NAT lab under load: the peer's check then met EOF, and the pair failed on
// both sides). When the wait ends, the socket is asked once more.
func dialPrimed(ctx context.Context, local, remote netip.AddrPort, ttl int) (*net.TCPConn, error) {
	pc, err := startPrimed(local, remote, ttl)
	if err != nil {
		return nil, err
	}
	return pc.wait(ctx)
}

// primedConn is a socket whose low-TTL SYN has left.
type primedConn struct {
	f             *os.File // nil when connect() completed at once
	c             *net.TCPConn
	local, remote netip.AddrPort
}

func (pc *primedConn) fail(err error) error {
	return &ConnectError{Local: pc.local, Remote: pc.remote, Err: &net.OpError{
		Op: "dial", Net: network(pc.remote.Addr()), Source: net.TCPAddrFromAddrPort(pc.local),
		Addr: net.TCPAddrFromAddrPort(pc.remote), Err: err,
	}}
}

// startPrimed creates the socket and sends the SYN, on the calling
// goroutine's thread: the socket belongs to that thread's network
// namespace, which matters to callers that switch namespaces (the lab).
func startPrimed(local, remote netip.AddrPort, ttl int) (*primedConn, error) {
	local, remote = unmap(local), unmap(remote)
	pc := &primedConn{local: local, remote: remote}
	if err := checkPair(local, remote); err != nil {
		return nil, &ConnectError{Local: local, Remote: remote, Err: err}
	}
	family, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_TTL
	recvErr, recvErrLevel := unix.IP_RECVERR, unix.IPPROTO_IP
	if remote.Addr().Is6() {
		family, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS
		recvErr, recvErrLevel = unix.IPV6_RECVERR, unix.IPPROTO_IPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, pc.fail(os.NewSyscallError("socket", err))
	}
	owned := true // until os.NewFile takes the descriptor
	defer func() {
		if owned {
			unix.Close(fd)
		}
	}()
	if local.Port() != 0 {
		if err := setReuse(fd); err != nil {
			return nil, pc.fail(err)
		}
	}
	if local.Addr().IsValid() || local.Port() != 0 {
		sa, err := sockaddr(local, family)
		if err != nil {
			return nil, pc.fail(err)
		}
		if err := unix.Bind(fd, sa); err != nil {
			return nil, pc.fail(os.NewSyscallError("bind", err))
		}
	}
	if ttl > 0 {
		if err := unix.SetsockoptInt(fd, level, opt, ttl); err != nil {
			return nil, pc.fail(os.NewSyscallError("setsockopt", err))
		}
		// The ICMP answer to the low-TTL SYN ends the connect with
		// EHOSTUNREACH; the error queue says whether it was Time Exceeded
		// (primed) or a real unreachable.
		if err := unix.SetsockoptInt(fd, recvErrLevel, recvErr, 1); err != nil {
			return nil, pc.fail(os.NewSyscallError("setsockopt", err))
		}
	}
	rsa, err := sockaddr(remote, family)
	if err != nil {
		return nil, pc.fail(err)
	}
	err = unix.Connect(fd, rsa)
	if err != nil && err != unix.EINPROGRESS {
		return nil, pc.fail(os.NewSyscallError("connect", err))
	}
	connected := err == nil
	// -1 is "use the route's default", which is what the socket had.
	if ttl > 0 {
		if err := unix.SetsockoptInt(fd, level, opt, -1); err != nil {
			return nil, pc.fail(os.NewSyscallError("setsockopt", err))
		}
	}
	f := os.NewFile(uintptr(fd), "tcpso-primed")
	owned = false
	if connected {
		defer f.Close() // net.FileConn keeps its own duplicate
		c, err := net.FileConn(f)
		if err != nil {
			return nil, pc.fail(err)
		}
		pc.c = c.(*net.TCPConn)
		return pc, nil
	}
	pc.f = f
	return pc, nil
}

// wait waits for the handshake (any goroutine may call it) and returns
// the connection; it closes the socket on failure.
func (pc *primedConn) wait(ctx context.Context) (*net.TCPConn, error) {
	if pc.c != nil {
		return pc.c, nil
	}
	defer pc.f.Close() // net.FileConn keeps its own duplicate
	if err := waitConnect(ctx, pc.f); err != nil {
		return nil, pc.fail(err)
	}
	c, err := net.FileConn(pc.f)
	if err != nil {
		return nil, pc.fail(err)
	}
	return c.(*net.TCPConn), nil
}

// waitConnect waits for a non-blocking connect on f to finish, the way the
// net package does: writability, then SO_ERROR.
func waitConnect(ctx context.Context, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := f.SetWriteDeadline(dl); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(aLongTimeAgo) })
	defer stop()
	var cerr error
	err = rc.Write(func(fd uintptr) bool {
		done, e := settled(int(fd))
		cerr = e
		return done
	})
	if err != nil {
		// The deadline (or ctx) ended the wait, but the handshake may have
		// ended first while this process was not running: ask the socket.
		var done bool
		if rc.Control(func(fd uintptr) { done, cerr = settled(int(fd)) }) == nil && done {
			return cerr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return cerr
}

// settled reports whether the connect on fd has ended, and how: nil when
// established, the connect error (a *TimeExceededError for an ICMP Time
// Exceeded) when it failed.
func settled(fd int) (bool, error) {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return true, os.NewSyscallError("getsockopt", err)
	}
	if v != 0 {
		if te := timeExceeded(fd, syscall.Errno(v)); te != nil {
			return true, te
		}
		return true, os.NewSyscallError("connect", syscall.Errno(v))
	}
	if _, err := unix.Getpeername(fd); err == nil {
		return true, nil // established
	}
	return false, nil // still SYN_SENT: wait for the poller
}

// timeExceeded reads the socket's error queue (IP_RECVERR) and returns a
// *TimeExceededError when the connect ended on an ICMP Time Exceeded.
func timeExceeded(fd int, errno syscall.Errno) error {
	oob := make([]byte, 512)
	for range 4 { // a few queued errors at most; the last one decides
		_, oobn, _, _, err := unix.Recvmsg(fd, nil, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err != nil {
			return nil
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil
		}
		for _, m := range msgs {
			if from, ok := parseTimeExceeded(m); ok {
				return &TimeExceededError{From: from, Errno: os.NewSyscallError("connect", errno)}
			}
		}
	}
	return nil
}

// parseTimeExceeded reads one IP_RECVERR/IPV6_RECVERR control message: a
// struct sock_extended_err followed by the offender's sockaddr.
func parseTimeExceeded(m unix.SocketControlMessage) (netip.Addr, bool) {
	const eeLen = 16 // sizeof(struct sock_extended_err)
	d := m.Data
	if len(d) < eeLen {
		return netip.Addr{}, false
	}
	origin, typ := d[4], d[5]
	switch {
	case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR &&
		origin == unix.SO_EE_ORIGIN_ICMP && typ == 11: // ICMP Time Exceeded
		if len(d) >= eeLen+8 {
			return netip.AddrFrom4([4]byte(d[eeLen+4 : eeLen+8])), true
		}
		return netip.Addr{}, true
	case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR &&
		origin == unix.SO_EE_ORIGIN_ICMP6 && typ == 3: // ICMPv6 Time Exceeded
		if len(d) >= eeLen+24 {
			return netip.AddrFrom16([16]byte(d[eeLen+8 : eeLen+24])), true
		}
		return netip.Addr{}, true
	}
	return netip.Addr{}, false
}

// sockaddr converts ap for a socket of the given family; an invalid address
// means the family's wildcard.
func sockaddr(ap netip.AddrPort, family int) (unix.Sockaddr, error) {
	a := ap.Addr()
	if family == unix.AF_INET {
		sa := &unix.SockaddrInet4{Port: int(ap.Port())}
		if a.IsValid() {
			sa.Addr = a.As4()
		}
		return sa, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port())}
	if a.IsValid() {
		sa.Addr = a.As16()
		if z := a.Zone(); z != "" {
			idx, err := zoneIndex(z)
			if err != nil {
				return nil, err
			}
			sa.ZoneId = idx
		}
	}
	return sa, nil
}

func zoneIndex(zone string) (uint32, error) {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("zone %q: %w", zone, err)
	}
	return uint32(ifi.Index), nil
}
