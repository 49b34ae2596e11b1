package turn

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/coturn"
	"github.com/icetcp/icetcp/internal/testnet"
)

func TestErrorIs(t *testing.T) {
	for _, tc := range []struct {
		code int
		want error
	}{
		{401, ErrUnauthorized}, {441, ErrUnauthorized}, {486, ErrQuota}, {403, ErrForbidden},
		{447, ErrConnectFailed}, {442, ErrUnsupportedTransport}, {437, ErrAllocationMismatch},
	} {
		err := error(&Error{Op: "allocate", Server: "192.0.2.1:3478", Code: tc.code, Reason: "x"})
		if !errors.Is(err, tc.want) {
			t.Errorf("code %d does not match %v", tc.code, tc.want)
		}
		if errors.Is(err, ErrAllocationLost) {
			t.Errorf("code %d matches ErrAllocationLost", tc.code)
		}
	}
	lost := &Error{Op: "refresh", Server: "192.0.2.1:3478", Code: 437, Reason: "Allocation Mismatch", lost: true}
	if !errors.Is(lost, ErrAllocationLost) || !errors.Is(lost, ErrAllocationMismatch) {
		t.Errorf("%v: want both ErrAllocationLost and ErrAllocationMismatch", lost)
	}
	if got, want := lost.Error(), "turn: refresh 192.0.2.1:3478: allocation lost: 437 Allocation Mismatch"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := &Error{Op: "allocate", Server: "192.0.2.1:3478", Err: syscall.ECONNREFUSED}
	if !errors.Is(wrapped, syscall.ECONNREFUSED) || errors.Is(wrapped, ErrUnauthorized) {
		t.Errorf("%v: the cause must stay visible, and no code sentinel match", wrapped)
	}
}

// Wrong credentials and expired REST credentials end in ErrUnauthorized.
func TestWrongCredentials(t *testing.T) {
	forEachCred(t, coturn.Config{}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		bad := cfg
		if cfg.Secret != "" {
			bad.Secret = "south-wind"
		} else {
			bad.Password = "looking-glass"
		}
		_, err := Allocate(testCtx(t), bad)
		checkUnauthorized(t, err, c)

		unknown := cfg
		unknown.Username = "mallory"
		unknown.Secret = ""
		unknown.Password = "x"
		_, err = Allocate(testCtx(t), unknown)
		checkUnauthorized(t, err, c)
	})
}

func checkUnauthorized(t *testing.T, err error, c *coturn.Coturn) {
	t.Helper()
	var e *Error
	if !errors.Is(err, ErrUnauthorized) || !errors.As(err, &e) || e.Code != 401 || e.Op != "allocate" {
		t.Fatalf("err = %v, want a 401 *Error matching ErrUnauthorized", err)
	}
	if !strings.HasPrefix(err.Error(), "turn: allocate "+c.Addr().String()) {
		t.Errorf("message %q does not name the operation and the server", err)
	}
}

func TestExpiredRESTCredentials(t *testing.T) {
	c := coturn.StartT(t, coturn.Config{Secret: testSecret})
	cfg := Config{Server: uriOf(c.Addr()), Username: testUser, Secret: testSecret, RESTLifetime: -time.Minute, LoggerFactory: quietLogs()}
	_, err := Allocate(testCtx(t), cfg)
	checkUnauthorized(t, err, c)
	if !errors.Is(err, ErrRESTExpired) {
		t.Errorf("err = %v, want it to say the REST credentials expired", err)
	}
	// The same, minted by someone else and passed as long-term credentials.
	user, pass := RESTCredentials(testSecret, testUser, time.Now().Add(-time.Hour))
	_, err = Allocate(testCtx(t), Config{Server: uriOf(c.Addr()), Username: user, Password: pass, LoggerFactory: quietLogs()})
	checkUnauthorized(t, err, c)
	if !errors.Is(err, ErrRESTExpired) {
		t.Errorf("err = %v, want it to say the REST credentials expired", err)
	}
	// And fresh ones work.
	user, pass = RESTCredentials(testSecret, testUser, time.Now().Add(time.Hour))
	a := mustAllocate(t, Config{Server: uriOf(c.Addr()), Username: user, Password: pass, LoggerFactory: quietLogs()})
	a.Close()
}

// A port nobody listens on fails at once with the network error; a server
// that accepts and never answers fails when ctx ends.
func TestUnreachableServer(t *testing.T) {
	l := listenLoopback(t)
	closed := addrPort(l.Addr())
	l.Close()
	_, err := Allocate(testCtx(t), Config{Server: uriOf(closed), Username: testUser, Password: testPassword})
	var e *Error
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &e) || e.Op != "allocate" {
		t.Errorf("closed port: %v, want an *Error wrapping ECONNREFUSED", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "turn: allocate "+closed.String()+": ") {
		t.Errorf("message %q", err)
	}

	silent := listenLoopback(t)
	go func() {
		c, err := silent.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // until the client gives up
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = Allocate(ctx, Config{Server: uriOf(addrPort(silent.Addr())), Username: testUser, Password: testPassword})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &e) {
		t.Errorf("silent server: %v, want an *Error wrapping context.DeadlineExceeded", err)
	}
}

func TestUserQuota(t *testing.T) {
	forEachCred(t, coturn.Config{UserQuota: 1}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		a := mustAllocate(t, cfg)
		_, err := Allocate(testCtx(t), cfg)
		var e *Error
		if !errors.Is(err, ErrQuota) || !errors.As(err, &e) || e.Code != 486 {
			t.Fatalf("second allocation: %v, want 486 ErrQuota", err)
		}
		a.Close()
	})
}

// Connect to a port nobody listens on: the server answers 447.
func TestConnectClosedPort(t *testing.T) {
	forEachCred(t, coturn.Config{AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		a := mustAllocate(t, cfg)
		l := listenLoopback(t)
		closed := addrPort(l.Addr())
		l.Close()
		_, err := a.Connect(testCtx(t), closed)
		var e *Error
		if !errors.Is(err, ErrConnectFailed) || !errors.As(err, &e) || e.Code != 447 || e.Op != "connect" {
			t.Fatalf("Connect to a closed port: %v, want 447 ErrConnectFailed", err)
		}
		// The allocation survives a failed Connect.
		l2 := serveLoopback(t, func(p net.Conn) {
			p.Write([]byte("hello"))
			discard(p)
		})
		conn, err := a.Connect(testCtx(t), addrPort(l2.Addr()))
		if err != nil {
			t.Fatalf("Connect after a 447: %v", err)
		}
		defer conn.Close()
		if b, err := io.ReadAll(io.LimitReader(conn, 5)); err != nil || string(b) != "hello" {
			t.Errorf("read %q, %v", b, err)
		}
	})
}

// coturn refuses loopback peers unless told otherwise: 403.
func TestConnectForbiddenPeer(t *testing.T) {
	forEachCred(t, coturn.Config{}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		a := mustAllocate(t, cfg)
		l := listenLoopback(t)
		_, err := a.Connect(testCtx(t), addrPort(l.Addr()))
		if !errors.Is(err, ErrForbidden) {
			t.Fatalf("Connect to a loopback peer: %v, want ErrForbidden", err)
		}
	})
}

// A peer whose IP is not permitted is refused by the server and never
// reaches Accept; once permitted, it does.
func TestPermissions(t *testing.T) {
	forEachCred(t, coturn.Config{AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		ctx := testCtx(t)
		a := mustAllocate(t, cfg)
		if err := a.Permit(ctx, loopback); err != nil {
			t.Fatal(err)
		}
		from := func(ip string) (net.Conn, error) {
			p, err := testnet.Dialer(ip).Dial("tcp", a.RelayedAddr().String())
			if err == nil {
				t.Cleanup(func() { p.Close() })
			}
			return p, err
		}
		mustFrom := func(ip string) net.Conn {
			p, err := from(ip)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		// coturn accepts the connection and resets it at once, often
		// before connect returns.
		stranger, err := from("127.0.0.2")
		if err == nil {
			stranger.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = stranger.Read(make([]byte, 1))
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("an unpermitted peer: %v, want the server to reset it", err)
		}
		friend := mustFrom("127.0.0.1")
		got, err := a.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got.Close()
		if got.RemoteAddr().String() != friend.LocalAddr().String() {
			t.Fatalf("accepted %v, want the permitted peer %v", got.RemoteAddr(), friend.LocalAddr())
		}
		if err := a.Permit(ctx, loopback, mustAddr("127.0.0.2")); err != nil {
			t.Fatal(err)
		}
		stranger = mustFrom("127.0.0.2")
		got, err = a.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got.Close()
		if got.RemoteAddr().String() != stranger.LocalAddr().String() {
			t.Fatalf("accepted %v, want the newly permitted %v", got.RemoteAddr(), stranger.LocalAddr())
		}
		a.mu.Lock()
		backlog := a.backlog
		a.mu.Unlock()
		if backlog != 0 {
			t.Errorf("%d connections wait for Accept; only permitted peers connected", backlog)
		}
	})
}

// A bare error code reads as words (issue 17: a wrong TURN password was a
// warning ending in "401 ").
func TestErrorWords(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{Op: "allocate", Server: "relay:3478", Code: 401}, "turn: allocate relay:3478: wrong TURN credentials (401)"},
		{Error{Op: "allocate", Server: "relay:3478", Code: 441, Reason: "Wrong Credentials"}, "turn: allocate relay:3478: wrong TURN credentials (441 Wrong Credentials)"},
		{Error{Op: "allocate", Server: "relay:3478", Code: 438}, "turn: allocate relay:3478: the server kept refusing our nonce (stale nonce) (438)"},
		{Error{Op: "allocate", Server: "relay:3478", Code: 486, Reason: "Allocation Quota Reached"}, "turn: allocate relay:3478: relay quota reached: the server allows this user no more allocations (486 Allocation Quota Reached)"},
		{Error{Op: "connect", Server: "relay:3478", Code: 499, Reason: "Odd"}, "turn: connect relay:3478: 499 Odd"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.e, got, tc.want)
		}
	}
}
