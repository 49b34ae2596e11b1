package turn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun/v4"
)

const (
	// acceptBacklog bounds the ConnectionAttempts bound ahead of Accept;
	// further attempts are ignored and the server drops them after 30 s.
	acceptBacklog = 16
	// attemptTimeout: a peer connection that is not bound within 30 s is
	// closed by the server (RFC 6062 §5.3); binding later is pointless.
	attemptTimeout = 30 * time.Second
	// eofProbeTimeout bounds the question that tells a peer's end of
	// stream from a relay's failure (see dataConn.Read).
	eofProbeTimeout = 5 * time.Second
)

// Connect asks the server to open a TCP connection to peer (Connect, RFC
// 6062 §4.3), then binds a new data connection to it (ConnectionBind, same
// section). It permits peer's IP first (see Permit). The returned net.Conn
// carries the peer's bytes: RemoteAddr is peer, LocalAddr the data
// connection's local address. Errors are *Error: ErrConnectFailed when the
// server could not reach peer (447), ErrForbidden when it refuses peer.
func (a *Allocation) Connect(ctx context.Context, peer netip.AddrPort) (net.Conn, error) {
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	if !peer.Addr().IsValid() || peer.Port() == 0 {
		return nil, &Error{Op: "connect", Server: a.name, Err: fmt.Errorf("invalid peer address %v", peer)}
	}
	if err := a.Permit(ctx, peer.Addr()); err != nil {
		return nil, err
	}
	// Open the data connection while the server connects to the peer: it
	// saves a round trip (two more with TLS).
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type dialed struct {
		conn net.Conn
		err  error
	}
	dialCh := make(chan dialed, 1)
	go func() {
		c, err := a.dial.dialContext(dctx, a.addr)
		dialCh <- dialed{c, err}
	}()
	cid, err := a.connect(ctx, peer)
	if err != nil {
		cancel()
		if d := <-dialCh; d.conn != nil {
			d.conn.Close()
		}
		return nil, err
	}
	d := <-dialCh
	if d.err != nil {
		return nil, a.opErr("connect", fmt.Errorf("data connection: %w", d.err))
	}
	return a.bind(ctx, d.conn, cid, peer)
}

// connect runs the Connect transaction and returns the CONNECTION-ID.
func (a *Allocation) connect(ctx context.Context, peer netip.AddrPort) (uint32, error) {
	resp, err := a.ctl.request(ctx, stun.MethodConnect, xorAddr{stun.AttrXORPeerAddress, peer})
	if err != nil {
		return 0, a.opErr("connect", err)
	}
	if resp.Type.Class == stun.ClassErrorResponse {
		return 0, a.respErr("connect", resp)
	}
	cid, err := getConnectionID(resp)
	if err != nil {
		return 0, &Error{Op: "connect", Server: a.name, Err: fmt.Errorf("Connect response: %w", err)}
	}
	return cid, nil
}

// Accept returns the next connection a peer opened to the relayed address
// (ConnectionAttempt, RFC 6062 §4.4); RemoteAddr is the peer's address.
// Only permitted peers reach it. Attempts are bound as they arrive, whether
// or not Accept is waiting, so that the server starts forwarding the peer's
// bytes at once; up to 16 bound connections wait for Accept, and attempts
// beyond that are ignored until Accept takes some.
func (a *Allocation) Accept(ctx context.Context) (net.Conn, error) {
	select {
	case c := <-a.accepted:
		a.release()
		return c, nil
	case <-ctx.Done():
		return nil, &Error{Op: "accept", Server: a.name, Err: ctx.Err()}
	case <-a.done:
		return nil, a.deadErr("accept")
	}
}

// onAttempt runs on the control connection's reader: it must not block.
func (a *Allocation) onAttempt(peer netip.AddrPort, cid uint32) {
	a.mu.Lock()
	if a.err != nil || a.backlog >= acceptBacklog {
		full := a.err == nil
		a.mu.Unlock()
		if full {
			a.log.Warnf("%s: %d connections wait for Accept; ignoring the one from %s", a.name, acceptBacklog, peer)
		}
		return
	}
	a.backlog++
	a.wg.Add(1) // the reader's own count keeps the group above zero
	a.mu.Unlock()
	go a.bindAttempt(peer, cid)
}

// bindAttempt binds a peer's connection on a new data connection and queues
// it for Accept.
func (a *Allocation) bindAttempt(peer netip.AddrPort, cid uint32) {
	defer a.wg.Done()
	ctx, cancel := context.WithTimeout(a.bg, attemptTimeout)
	defer cancel()
	conn, err := a.dial.dialContext(ctx, a.addr)
	var c net.Conn
	if err == nil {
		c, err = a.bind(ctx, conn, cid, peer)
	}
	a.mu.Lock()
	if err != nil || a.err != nil {
		a.backlog--
		a.mu.Unlock()
		if c != nil {
			c.Close()
		}
		if err != nil && a.bg.Err() == nil {
			a.log.Warnf("%s: connection from %s: %v", a.name, peer, err)
		}
		return
	}
	a.accepted <- c // backlog reserved its place: never blocks
	a.mu.Unlock()
}

func (a *Allocation) release() {
	a.mu.Lock()
	a.backlog--
	a.mu.Unlock()
}

// drainAccepted closes bound connections nobody will Accept.
func (a *Allocation) drainAccepted() {
	for {
		select {
		case c := <-a.accepted:
			a.release()
			c.Close()
		default:
			return
		}
	}
}

// bind sends ConnectionBind for cid on conn, a new connection to the
// server, and returns the data connection to peer. It owns conn and closes
// it on failure. A 438 Stale Nonce is tried once more, with the new nonce,
// on a new connection.
func (a *Allocation) bind(ctx context.Context, conn net.Conn, cid uint32, peer netip.AddrPort) (net.Conn, error) {
	for try := 0; ; try++ {
		resp, err := a.connectionBind(ctx, conn, cid)
		if err == nil && resp.Type.Class == stun.ClassSuccessResponse {
			alive := sync.OnceValue(func() bool { return a.relayAlive(peer.Addr()) })
			return &dataConn{Conn: conn, peer: net.TCPAddrFromAddrPort(peer), relayAlive: alive, a: a}, nil
		}
		conn.Close()
		if err != nil {
			return nil, a.opErr("bind", err)
		}
		code, _ := errorCode(resp)
		if code != int(stun.CodeStaleNonce) || try > 0 {
			return nil, a.respErr("bind", resp)
		}
		if err := a.ctl.learn(resp); err != nil {
			return nil, a.opErr("bind", err)
		}
		if conn, err = a.dial.dialContext(ctx, a.addr); err != nil {
			return nil, a.opErr("bind", fmt.Errorf("data connection: %w", err))
		}
	}
}

// aLongTimeAgo is a deadline in the past: it interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// connectionBind sends the ConnectionBind request on conn and reads the
// response, and not one byte more: the peer's data follows it at once,
// with whatever the server buffered before the bind (RFC 6062 §5.3-5.4).
func (a *Allocation) connectionBind(ctx context.Context, conn net.Conn, cid uint32) (*stun.Message, error) {
	m, key, err := a.ctl.build(stun.MethodConnectionBind, []stun.Setter{connectionIDAttr(cid)})
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
	var resp *stun.Message
	_, err = conn.Write(m.Raw)
	if err == nil {
		resp, err = readMessage(conn)
	}
	if !stop() || ctx.Err() != nil {
		return nil, context.Cause(ctx) // the deadline is or will be set: conn is spent
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("ConnectionBind: %w", context.DeadlineExceeded)
		}
		return nil, fmt.Errorf("ConnectionBind: %w", err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	switch {
	case resp.TransactionID != m.TransactionID:
		return nil, fmt.Errorf("ConnectionBind: answer to another transaction (%s)", resp.Type)
	case resp.Type.Class == stun.ClassErrorResponse:
		return resp, nil
	case key != nil:
		if err := key.Check(resp); err != nil {
			return nil, fmt.Errorf("ConnectionBind response fails MESSAGE-INTEGRITY: %w", err)
		}
	}
	return resp, nil
}

// dataConn is a bound data connection: after the ConnectionBind response
// it carries the peer's raw bytes both ways.
type dataConn struct {
	net.Conn
	peer *net.TCPAddr
	// relayAlive asks, once, whether the server still answers on the
	// control connection.
	relayAlive func() bool
	a          *Allocation
}

// RemoteAddr is the peer's address, not the server's.
func (c *dataConn) RemoteAddr() net.Addr { return c.peer }

// NetConn is the connection to the server that carries the peer's bytes
// (as tls.Conn's NetConn), for socket options.
func (c *dataConn) NetConn() net.Conn { return c.Conn }

// Read and Write tell a relay failure from the peer's end. The server
// ends a data connection alike when the peer closed or reset its side and
// when it dies or drops the allocation (coturn resets it in every case,
// pion's server sends a FIN in every case); at the first io.EOF,
// ECONNRESET or EPIPE the client asks the server on the control connection
// whether the allocation still exists (relayAlive). If it does, the error
// is returned as is: io.EOF is the peer's end of stream. If not, the error
// is an *Error matching ErrAllocationLost (net.ErrClosed after
// Allocation.Close).
func (c *dataConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && endsStream(err) && !c.relayAlive() {
		err = c.a.deadErr("read")
	}
	return n, err
}

func (c *dataConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && endsStream(err) && !c.relayAlive() {
		err = c.a.deadErr("write")
	}
	return n, err
}

func endsStream(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// CloseWrite half-closes the connection to the server. coturn answers it
// by resetting both the data connection and the peer's (see the package
// documentation): use it only where the server is known to relay a
// half-close.
func (c *dataConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// relayAlive reports whether the allocation still exists on a server that
// answers: it installs the permission for peer again (CreatePermission,
// harmless: it was installed before the connection existed) and waits at
// most eofProbeTimeout for the answer. A Binding request would not do: a
// server that deleted the allocation may still answer it. On no answer, or
// 437, the allocation ends.
func (a *Allocation) relayAlive(peer netip.Addr) bool {
	ctx, cancel := context.WithTimeout(a.bg, eofProbeTimeout)
	defer cancel()
	err := a.createPermission(ctx, "probe", []netip.AddrPort{netip.AddrPortFrom(peer, 0)})
	var e *Error
	switch {
	case err == nil:
		return true
	case errors.As(err, &e) && e.Code == int(stun.CodeAllocMismatch):
		e.lost = true
		a.fail(e)
	case errors.As(err, &e) && e.Code != 0:
		return true // an answer, if not the one we hoped for
	default:
		select {
		case <-a.ctl.dead:
			<-a.done // the reader ends the allocation and says why
		default:
			// No answer on a connection that is still open: the server
			// is as good as gone (a no-op after Close).
			a.fail(&Error{Op: "probe", Server: a.name, Err: fmt.Errorf("no answer on the control connection: %w", err), lost: true})
		}
	}
	return false
}
