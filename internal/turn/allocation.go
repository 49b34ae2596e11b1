package turn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
)

// closeTimeout bounds how long Close waits for the server to confirm the
// deallocation; closing the control connection deletes the allocation
// anyway (coturn and pion's server delete an allocation whose control
// connection closes).
const closeTimeout = 2 * time.Second

// Allocation is a TCP allocation on a TURN server (RFC 6062): a relayed
// transport address on which the server opens connections to peers
// (Connect) and accepts theirs (Accept). Its methods are safe for
// concurrent use. See the package documentation for its goroutines.
type Allocation struct {
	log     logging.LeveledLogger
	ctl     *control
	dial    dialer
	server  netip.AddrPort // the address the control connection reached
	addr    string         // where data connections go: server, or the configured host:port
	name    string         // the server in messages
	relayed netip.AddrPort
	mapped  netip.AddrPort

	bg     context.Context // ends at Close or loss; bounds background work
	stopBg context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup // run, maintain, binds in flight
	// accepted holds bound data connections from ConnectionAttempts until
	// Accept takes them; its capacity is acceptBacklog.
	accepted chan net.Conn
	live     atomic.Bool // the Allocate transaction succeeded

	mu        sync.Mutex                  // guards following
	err       *Error                      // set once, when done closes
	permitted map[netip.AddrPort]struct{} // a port of 0: the IP alone
	backlog   int                         // ConnectionAttempts being bound plus connections in accepted
}

// Allocate connects to the server, authenticates, and makes a TCP
// allocation (REQUESTED-TRANSPORT=TCP, RFC 6062 §4.1). It returns when the
// allocation exists or ctx ends; on failure it leaves nothing open. Errors
// are *Error (errors.Is: ErrUnauthorized, ErrQuota, ErrUnsupportedTransport,
// ...) wrapping the network error when the server cannot be reached.
func Allocate(ctx context.Context, cfg Config) (*Allocation, error) {
	name := cfg.Server.hostPort()
	fail := func(code int, reason string, err error) (*Allocation, error) {
		return nil, &Error{Op: "allocate", Server: name, Code: code, Reason: reason, Err: err}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := newDialer(&cfg)
	conn, err := d.dialContext(ctx, name)
	if err != nil {
		return fail(0, "", err)
	}
	a := &Allocation{
		log: cfg.logger(), dial: d, addr: name, name: name,
		done:      make(chan struct{}),
		accepted:  make(chan net.Conn, acceptBacklog),
		permitted: make(map[netip.AddrPort]struct{}),
	}
	if s := addrPortOf(conn.RemoteAddr()); s.IsValid() {
		// Data connections must reach the server instance that holds the
		// allocation, not whatever a second DNS lookup returns.
		a.server, a.addr = s, s.String()
		if cfg.Server.Host != s.Addr().String() {
			a.name = name + " (" + a.addr + ")"
		}
	}
	user, pass := cfg.credentials(time.Now())
	a.ctl = newControl(conn, a.name, user, pass, a.log)
	a.ctl.onAttempt = a.onAttempt
	a.bg, a.stopBg = context.WithCancel(context.Background())
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.ctl.run()
		a.fail(&Error{Op: "control", Server: a.name, Err: a.ctl.deadErr(), lost: true})
	}()

	lifetime, code, reason, err := a.allocate(ctx)
	if err != nil || code != 0 {
		a.shutdown(&Error{Op: "allocate", Server: a.name, Err: net.ErrClosed})
		if code == int(stun.CodeUnauthorized) {
			if _, rerr := RESTExpiry(user, time.Now()); errors.Is(rerr, ErrRESTExpired) {
				err = rerr // say why, beside the server's 401
			}
		}
		return nil, &Error{Op: "allocate", Server: a.name, Code: code, Reason: reason, Err: err}
	}
	a.live.Store(true)
	a.log.Debugf("%s: allocated %s (mapped %s), lifetime %s", a.name, a.relayed, a.mapped, lifetime)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.maintain(lifetime)
	}()
	return a, nil
}

// allocate runs the Allocate transaction; code is the server's error code.
func (a *Allocation) allocate(ctx context.Context) (lifetime time.Duration, code int, reason string, err error) {
	attrs := []stun.Setter{requestedTransportTCP}
	if a.server.Addr().Is6() {
		// RFC 6156: without it the server relays over IPv4. A
		// client that reached the server over IPv6 wants IPv6 peers.
		attrs = append(attrs, requestedFamilyIPv6)
	}
	resp, err := a.ctl.request(ctx, stun.MethodAllocate, attrs...)
	if err != nil {
		return 0, 0, "", err
	}
	if resp.Type.Class == stun.ClassErrorResponse {
		code, reason := errorCode(resp)
		if code == int(stun.CodeUnauthorized) && a.ctl.user == "" {
			return 0, code, reason, errors.New("the server requires credentials and none are configured")
		}
		return 0, code, reason, nil
	}
	if a.relayed, err = getXORAddr(resp, stun.AttrXORRelayedAddress); err != nil {
		return 0, 0, "", fmt.Errorf("Allocate response: %w", err)
	}
	if a.mapped, err = getXORAddr(resp, stun.AttrXORMappedAddress); err != nil {
		a.log.Debugf("%s: Allocate response: %v", a.name, err) // optional in RFC 5766 servers
	}
	if lifetime, err = getLifetime(resp); err != nil {
		return 0, 0, "", fmt.Errorf("Allocate response: %w", err)
	}
	return lifetime, 0, "", nil
}

// RelayedAddr is the allocation's XOR-RELAYED-ADDRESS: the relayed
// candidate.
func (a *Allocation) RelayedAddr() netip.AddrPort { return a.relayed }

// MappedAddr is the XOR-MAPPED-ADDRESS the server saw for the control
// connection: a server-reflexive address for free. It is the zero value if
// the server did not send one.
func (a *Allocation) MappedAddr() netip.AddrPort { return a.mapped }

// Server is the server address the control connection reached (the zero
// value when Config.Dial returned a connection that is not TCP).
func (a *Allocation) Server() netip.AddrPort { return a.server }

// Done is closed when the allocation ends: Close, the server closed the
// control connection, a refresh failed, or it expired. Err says why.
func (a *Allocation) Done() <-chan struct{} { return a.done }

// Err is nil while the allocation lives. After Done it is an *Error that
// matches ErrAllocationLost when the allocation was lost, or net.ErrClosed
// after Close.
func (a *Allocation) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		return nil
	}
	return a.err
}

// deadErr is the reason an operation cannot run on a dead allocation.
func (a *Allocation) deadErr(op string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil {
		return &Error{Op: op, Server: a.name, Err: net.ErrClosed}
	}
	return a.err.withOp(op)
}

// opErr wraps the failure of op: the allocation's end if that caused it.
func (a *Allocation) opErr(op string, err error) error {
	select {
	case <-a.done:
		return a.deadErr(op)
	default:
		return &Error{Op: op, Server: a.name, Err: err}
	}
}

// respErr is the *Error for an error response to op.
func (a *Allocation) respErr(op string, resp *stun.Message) error {
	code, reason := errorCode(resp)
	return &Error{Op: op, Server: a.name, Code: code, Reason: reason}
}

// Close deallocates (Refresh with LIFETIME 0, RFC 8656 §8), closes the
// control connection, stops refreshes and closes data connections from
// ConnectionAttempts that Accept has not returned. It waits for the
// allocation's goroutines and at most closeTimeout for the server's answer.
// Data connections already returned belong to the caller and stay open on
// this side; the server may close them when the allocation goes (coturn
// does, see the package documentation). Close returns the deallocation's
// error, if the server answered with one; calling it again returns nil.
func (a *Allocation) Close() error {
	var err error
	select {
	case <-a.done:
	default:
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		resp, rerr := a.ctl.request(ctx, stun.MethodRefresh, lifetimeAttr(0))
		cancel()
		switch {
		case rerr != nil:
			a.log.Debugf("%s: deallocate: %v", a.name, rerr)
		case resp.Type.Class == stun.ClassErrorResponse:
			code, reason := errorCode(resp)
			if code != int(stun.CodeAllocMismatch) { // 437: already gone
				err = &Error{Op: "close", Server: a.name, Code: code, Reason: reason}
			}
		}
	}
	a.shutdown(&Error{Op: "close", Server: a.name, Err: net.ErrClosed})
	return err
}

// fail ends the allocation with why, unless it has ended already. It
// closes the control connection, which ends run; it does not wait.
func (a *Allocation) fail(why *Error) {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		return
	}
	a.err = why
	a.mu.Unlock()
	if why.lost && a.live.Load() {
		a.log.Warnf("%s: %v", a.name, why)
	}
	close(a.done)
	a.stopBg()
	a.ctl.conn.Close()
	a.drainAccepted()
}

// shutdown is fail plus waiting for every goroutine of the allocation.
func (a *Allocation) shutdown(why *Error) {
	a.fail(why)
	a.wg.Wait()
	a.drainAccepted() // what binds finished while we waited
}
