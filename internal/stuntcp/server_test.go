package stuntcp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"
)

func startServer(t *testing.T, s *Server) netip.AddrPort {
	t.Helper()
	if s.LoggerFactory == nil {
		lf := logging.NewDefaultLoggerFactory()
		lf.DefaultLogLevel = logging.LogLevelDisabled
		s.LoggerFactory = lf
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return netip.MustParseAddrPort(l.Addr().String())
}

func dial(t *testing.T, ap netip.AddrPort) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ap.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitClosed reports whether the server closed c within a few seconds: EOF,
// or a reset when the server closed with unread input in its buffer.
func waitClosed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestBindingKeptOpen(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, &Server{})
	c := dial(t, srv)
	want := netip.MustParseAddrPort(c.LocalAddr().String())
	for i := range 3 {
		got, err := Binding(ctxT(t), c)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got != want {
			t.Fatalf("request %d: mapped %v, want %v", i, got, want)
		}
	}
}

func TestBindingResponseAttributes(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, &Server{})
	c := dial(t, srv)
	req := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if _, err := c.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	var res stun.Message
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ReadMessage(c, &res); err != nil {
		t.Fatal(err)
	}
	if res.Type != stun.BindingSuccess || res.TransactionID != req.TransactionID {
		t.Fatalf("response %v", &res)
	}
	var origin stun.ResponseOrigin
	if err := origin.GetFrom(&res); err != nil {
		t.Fatal(err)
	}
	if got := netip.AddrPortFrom(netip.MustParseAddr(origin.IP.String()), uint16(origin.Port)); got != srv {
		t.Fatalf("RESPONSE-ORIGIN %v, want %v", got, srv)
	}
	var sw stun.Software
	if err := sw.GetFrom(&res); err != nil || sw.String() != "icetcp" {
		t.Fatalf("SOFTWARE %q (%v)", sw, err)
	}
	if err := stun.Fingerprint.Check(&res); err != nil {
		t.Fatal(err)
	}
}

func TestServerErrorResponses(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, &Server{})
	c := dial(t, srv)
	cases := []struct {
		name string
		req  *stun.Message
		code stun.ErrorCode
	}{
		{"CHANGE-REQUEST", stun.MustBuild(stun.TransactionID, stun.BindingRequest,
			stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 0, 0, 6}}, stun.Fingerprint), stun.CodeUnknownAttribute},
		{"Allocate", stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest)), stun.CodeBadRequest},
	}
	for _, tc := range cases {
		// An indication first: it gets no answer, and the stream stays in sync.
		ind := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassIndication))
		if _, err := c.Write(append(bytes.Clone(ind.Raw), tc.req.Raw...)); err != nil {
			t.Fatal(err)
		}
		var res stun.Message
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := ReadMessage(c, &res); err != nil {
			t.Fatal(err)
		}
		var code stun.ErrorCodeAttribute
		if res.TransactionID != tc.req.TransactionID || res.Type.Class != stun.ClassErrorResponse || code.GetFrom(&res) != nil || code.Code != tc.code {
			t.Fatalf("%s: response %v, want error %d", tc.name, &res, tc.code)
		}
		if tc.code == stun.CodeUnknownAttribute {
			var ua stun.UnknownAttributes
			if err := ua.GetFrom(&res); err != nil || len(ua) != 1 || ua[0] != stun.AttrChangeRequest {
				t.Fatalf("UNKNOWN-ATTRIBUTES %v (%v)", ua, err)
			}
		}
	}
	if _, err := Binding(ctxT(t), c); err != nil {
		t.Fatalf("connection unusable after error responses: %v", err)
	}
}

// lockedBuffer collects log output written from server goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServerBadInputClosesOnlyThatConn(t *testing.T) {
	checkLeaks(t)
	var logs lockedBuffer
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	lf.Writer = &logs
	srv := startServer(t, &Server{LoggerFactory: lf})
	keep := dial(t, srv)
	if _, err := Binding(ctxT(t), keep); err != nil {
		t.Fatal(err)
	}
	oversized := bytes.Clone(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw)
	oversized[2], oversized[3] = 0xFF, 0xFC // 65532-byte body announced
	badFP := bytes.Clone(stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint).Raw)
	badFP[len(badFP)-1] ^= 1
	for name, in := range map[string][]byte{
		"garbage":            []byte("GET / HTTP/1.1\r\nHost: stun\r\n\r\n"),
		"oversized":          oversized,
		"bad fingerprint":    badFP,
		"truncated then fin": oversized[:12],
	} {
		c := dial(t, srv)
		if _, err := c.Write(in); err != nil {
			t.Fatal(err)
		}
		if name == "truncated then fin" {
			c.(*net.TCPConn).CloseWrite()
		}
		if !waitClosed(c) {
			t.Fatalf("%s: server did not close the connection", name)
		}
	}
	if _, err := Binding(ctxT(t), keep); err != nil {
		t.Fatalf("kept connection broken by others' bad input: %v", err)
	}
	fresh := dial(t, srv)
	if _, err := Binding(ctxT(t), fresh); err != nil {
		t.Fatalf("server stopped serving: %v", err)
	}
	for _, want := range []string{"icetcp-stun", "not a STUN message", "too large", "FINGERPRINT"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

func TestServerIdleTimeout(t *testing.T) {
	checkLeaks(t)
	srv := startServer(t, &Server{IdleTimeout: 100 * time.Millisecond})
	c := dial(t, srv)
	if _, err := Binding(ctxT(t), c); err != nil {
		t.Fatal(err)
	}
	if !waitClosed(c) {
		t.Fatal("idle connection not closed")
	}
}

func TestServerMaxConns(t *testing.T) {
	checkLeaks(t)
	s := &Server{MaxConns: 2}
	srv := startServer(t, s)
	a, b := dial(t, srv), dial(t, srv)
	for _, c := range []net.Conn{a, b} {
		if _, err := Binding(ctxT(t), c); err != nil {
			t.Fatal(err)
		}
	}
	// The refusal (an RST) may even beat the end of connect().
	if third, err := net.Dial("tcp", srv.String()); err == nil {
		defer third.Close()
		if !waitClosed(third) {
			t.Fatal("connection over MaxConns not closed")
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	if st := s.Stats(); st.RefusedMaxConns != 1 {
		t.Fatalf("stats %+v, want one refusal for max-conns", st)
	}
	a.Close()
	// Once a slot frees, new connections are served again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", srv.String())
		if err == nil {
			_, err = Binding(ctxT(t), c)
			c.Close()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after a client left: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerCloseEndsEverything(t *testing.T) {
	checkLeaks(t)
	s := &Server{}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	s.LoggerFactory = lf
	var served []chan error
	var addrs []netip.AddrPort
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan error, 1)
		go func() { ch <- s.Serve(l) }()
		served = append(served, ch)
		addrs = append(addrs, netip.MustParseAddrPort(l.Addr().String()))
	}
	var conns []net.Conn
	for _, ap := range addrs {
		for range 3 {
			c := dial(t, ap)
			if _, err := Binding(ctxT(t), c); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ch := range served {
		if err := <-ch; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve returned %v", err)
		}
	}
	for _, c := range conns {
		if !waitClosed(c) {
			t.Fatal("client connection not closed by Close")
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close returned %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestBindingContext(t *testing.T) {
	checkLeaks(t)
	// A server that accepts and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	c := dial(t, netip.MustParseAddrPort(l.Addr().String()))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Binding(ctx, c); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: err = %v", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	if _, err := Binding(ctx2, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: err = %v", err)
	}
	// The deadline is cleared afterwards: a read now blocks instead of
	// failing at once.
	c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("read returned at once: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	c.Close()
	<-errc
}

func TestBindingSkipsStaleResponses(t *testing.T) {
	checkLeaks(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		var req stun.Message
		if err := ReadMessage(b, &req); err != nil {
			return
		}
		stale := stun.MustBuild(stun.TransactionID, stun.BindingSuccess, &stun.XORMappedAddress{IP: net.IPv4(10, 0, 0, 1), Port: 1})
		good := stun.MustBuild(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.MappedAddress{IP: net.IPv4(192, 0, 2, 9), Port: 3478})
		b.Write(stale.Raw)
		b.Write(good.Raw)
	}()
	got, err := Binding(ctxT(t), a)
	if err != nil {
		t.Fatal(err)
	}
	if got != netip.MustParseAddrPort("192.0.2.9:3478") {
		t.Fatalf("got %v, want the MAPPED-ADDRESS fallback of the matching response", got)
	}
}
