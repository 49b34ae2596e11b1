package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

const (
	testUfrag = "abcd"
	testPwd   = "0123456789abcdefghijkl" // 22 ICE-chars
	testCand  = "candidate:1 1 TCP 2128609279 10.0.0.1 9 typ host tcptype active"
)

// checkGoroutines fails the test if, after its other cleanups, more
// goroutines run than before it started. Registered first, it runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// startServer serves s on loopback and returns its ws:// URL.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
		ts.Close()
	})
	return "ws" + strings.TrimPrefix(ts.URL, "http")
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url, room string) *wsclient.Client {
	t.Helper()
	c, err := wsclient.Dial(testCtx(t), url, room)
	if err != nil {
		t.Fatalf("Dial %s: %v", room, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func recv(t *testing.T, c signaling.Channel) signaling.Message {
	t.Helper()
	m, err := c.Recv(testCtx(t))
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return m
}

// agentMessages is one message of every type an agent sends.
func agentMessages() []signaling.Message {
	return []signaling.Message{
		{V: 1, Type: signaling.TypeCredentials, Ufrag: testUfrag, Pwd: testPwd, Tiebreaker: 1 << 63, Role: signaling.RoleControlling},
		{V: 1, Type: signaling.TypeCandidate, Candidate: testCand},
		{V: 1, Type: signaling.TypeEndOfCandidates},
		{V: 1, Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: 1, Phase: signaling.PunchPing}},
		{V: 1, Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: 1, Phase: signaling.PunchPong}},
		{V: 1, Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: 1, Phase: signaling.PunchGo, DelayMs: 15}},
		{V: 1, Type: signaling.TypeBye, Reason: "done"},
	}
}

func TestRoomFull(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Server{})
	dial(t, url, "r")
	dial(t, url, "r")
	_, err := wsclient.Dial(testCtx(t), url, "r")
	if !errors.Is(err, signaling.ErrRoomFull) || !strings.Contains(err.Error(), `"r"`) {
		t.Fatalf("third Dial: %v", err)
	}
}

func TestUnknownRoom(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Server{Rooms: []string{"allowed"}})
	dial(t, url, "allowed")
	_, err := wsclient.Dial(testCtx(t), url, "other")
	if !errors.Is(err, signaling.ErrUnknownRoom) || !strings.Contains(err.Error(), `"other"`) {
		t.Fatalf("Dial other: %v", err)
	}
}

// rawDial opens a WebSocket to the server without joining.
func rawDial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(testCtx(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

func rawWrite(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	if err := ws.Write(testCtx(t), websocket.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

// rawReadControl reads one frame as a server control message.
func rawReadControl(t *testing.T, ws *websocket.Conn) signaling.Control {
	t.Helper()
	_, b, err := ws.Read(testCtx(t))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	c, err := signaling.DecodeControl(b)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return c
}

// expectClose reads until the server closes the connection and checks the status.
func expectClose(t *testing.T, ws *websocket.Conn, code websocket.StatusCode, reason string) {
	t.Helper()
	_, _, err := ws.Read(testCtx(t))
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
		t.Fatalf("read: %v; want close %v %q", err, code, reason)
	}
}

func TestJoinRefusals(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Server{})
	if _, err := wsclient.Dial(testCtx(t), url, "bad name"); !errors.Is(err, signaling.ErrInvalidRoom) {
		t.Fatalf("client-side check: %v", err)
	}
	tests := []struct {
		name, first, code string
	}{
		{"invalid room", `{"v":1,"type":"join","room":"bad/name"}`, signaling.CodeInvalidRoom},
		{"empty room", `{"v":1,"type":"join"}`, signaling.CodeInvalidRoom},
		{"message before join", `{"v":1,"type":"bye"}`, signaling.CodeNotJoined},
		{"version", `{"v":9,"type":"join","room":"x"}`, signaling.CodeVersion},
		{"not json", `hello`, signaling.CodeInvalidMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := rawDial(t, url)
			rawWrite(t, ws, tt.first)
			if c := rawReadControl(t, ws); c.Type != signaling.TypeError || c.Code != tt.code || !strings.HasPrefix(c.Reason, "signaling: ") {
				t.Fatalf("answer %+v, want error %q", c, tt.code)
			}
			expectClose(t, ws, websocket.StatusPolicyViolation, tt.code)
		})
	}
}

func TestInvalidMessageAfterJoin(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Server{})
	ws := rawDial(t, url)
	rawWrite(t, ws, `{"v":1,"type":"join","room":"r"}`)
	if c := rawReadControl(t, ws); c.Type != signaling.TypeJoined || c.Members != 1 || c.Room != "r" {
		t.Fatalf("join answer %+v", c)
	}
	for _, tt := range []struct{ msg, code string }{
		{`{"v":2,"type":"bye"}`, signaling.CodeVersion},
		{`{"v":1,"type":"credentials","ufrag":"ab"}`, signaling.CodeInvalidMessage},
		{`{"v":1,"type":"peer-left"}`, signaling.CodeInvalidMessage},
		{`{"v":1,"type":"join","room":"r"}`, signaling.CodeInvalidMessage},
	} {
		rawWrite(t, ws, tt.msg)
		if c := rawReadControl(t, ws); c.Type != signaling.TypeError || c.Code != tt.code {
			t.Fatalf("answer to %s: %+v, want code %q", tt.msg, c, tt.code)
		}
	}
	// Still joined: a peer gets what comes next, and nothing invalid.
	b := dial(t, url, "r")
	rawWrite(t, ws, `{"v":1,"type":"end-of-candidates","extra":1}`)
	if m := recv(t, b); m.Type != signaling.TypeEndOfCandidates {
		t.Fatalf("got %+v", m)
	}
}

func TestOversizedMessage(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Server{MaxMessageSize: 512})
	a := dial(t, url, "big")
	b := dial(t, url, "big")
	c := dial(t, url, "other")
	d := dial(t, url, "other")

	if err := a.Send(testCtx(t), signaling.Message{Type: signaling.TypeCandidate, Candidate: strings.Repeat("x", 1000)}); err != nil {
		t.Fatal(err)
	}
	_, err := a.Recv(testCtx(t))
	var ce *wsclient.CloseError
	if !errors.As(err, &ce) || ce.Code != int(websocket.StatusMessageTooBig) || ce.Reason != "message too large" || !errors.Is(err, signaling.ErrTooLarge) {
		t.Fatalf("oversized sender's Recv: %v", err)
	}
	if m := recv(t, b); m.Type != signaling.TypePeerLeft {
		t.Fatalf("other member got %+v, want peer-left", m)
	}
	// Other rooms and new joins keep working.
	if err := c.Send(testCtx(t), signaling.Message{Type: signaling.TypeBye}); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, d); m.Type != signaling.TypeBye {
		t.Fatalf("got %+v", m)
	}
	a2 := dial(t, url, "big")
	if err := a2.Send(testCtx(t), signaling.Message{Type: signaling.TypeEndOfCandidates}); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, b); m.Type != signaling.TypeEndOfCandidates {
		t.Fatalf("got %+v", m)
	}

	// Before the join, too.
	ws := rawDial(t, url)
	rawWrite(t, ws, `{"v":1,"type":"join","room":"`+strings.Repeat("r", 600)+`"}`)
	expectClose(t, ws, websocket.StatusMessageTooBig, "message too large")
}

func TestQueuedUntilPeerJoins(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Server{})
	// a is raw so that an invalid message can act as a barrier: its error
	// answer proves the server has taken everything sent before it.
	a := rawDial(t, url)
	rawWrite(t, a, `{"v":1,"type":"join","room":"q"}`)
	rawReadControl(t, a)
	want := agentMessages()
	for _, m := range want {
		b, err := signaling.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		rawWrite(t, a, string(b))
	}
	rawWrite(t, a, `{"v":1,"type":"barrier"}`)
	if c := rawReadControl(t, a); c.Type != signaling.TypeError {
		t.Fatalf("barrier answer %+v", c)
	}
	b := dial(t, url, "q")
	if b.Members() != 2 {
		t.Fatalf("members %d", b.Members())
	}
	for _, w := range want {
		if got := recv(t, b); !reflect.DeepEqual(got, w) {
			t.Fatalf("got %+v, want %+v", got, w)
		}
	}
	// And live relaying after the flush, both ways.
	rawWrite(t, a, `{"v":1,"type":"end-of-candidates"}`)
	if m := recv(t, b); m.Type != signaling.TypeEndOfCandidates {
		t.Fatalf("got %+v", m)
	}
	if err := b.Send(testCtx(t), signaling.Message{Type: signaling.TypeBye}); err != nil {
		t.Fatal(err)
	}
	if c := rawReadControl(t, a); c.Type != signaling.TypeBye {
		t.Fatalf("got %+v", c)
	}
}

func TestQueueOverflow(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Server{})
	a := dial(t, url, "q")
	for i := 0; i <= DefaultQueueMessages; i++ {
		m := signaling.Message{Type: signaling.TypeCandidate, Candidate: fmt.Sprintf("candidate:%d 1 TCP 1 10.0.0.1 9 typ host tcptype active", i)}
		if err := a.Send(testCtx(t), m); err != nil {
			t.Fatal(err)
		}
	}
	m := recv(t, a)
	if m.Type != signaling.TypeError || m.Code != signaling.CodeQueueFull || !strings.Contains(m.Reason, "queue full") {
		t.Fatalf("got %+v, want queue-full error", m)
	}
	b := dial(t, url, "q")
	for i := 0; i < DefaultQueueMessages; i++ {
		if m := recv(t, b); !strings.HasPrefix(m.Candidate, fmt.Sprintf("candidate:%d ", i)) {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
}

func TestVanishedClientDropped(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &Server{PingInterval: 100 * time.Millisecond})
	// A raw client that joins and then never reads, so it never answers pings.
	ws := rawDial(t, url)
	rawWrite(t, ws, `{"v":1,"type":"join","room":"v"}`)
	rawReadControl(t, ws)
	b := dial(t, url, "v")
	start := time.Now()
	if m := recv(t, b); m.Type != signaling.TypePeerLeft {
		t.Fatalf("got %+v", m)
	}
	// Pings every 100 ms: a few rounds, even on a loaded host; without
	// pings it would never be noticed.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("vanished client noticed after %v", d)
	}
}

func TestServerCloseLeavesNothing(t *testing.T) {
	checkGoroutines(t)
	s := &Server{}
	ts := httptest.NewServer(s)
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")

	var clients []*wsclient.Client
	for i := 0; i < 6; i++ {
		c, err := wsclient.Dial(testCtx(t), url, fmt.Sprintf("room%d", i/2))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	pending := rawDial(t, url) // connected, never joins
	_ = pending
	if err := clients[0].Send(testCtx(t), signaling.Message{Type: signaling.TypeBye}); err != nil {
		t.Fatal(err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		for {
			m, err := c.Recv(testCtx(t))
			if err == nil {
				continue // the relayed bye or a peer-left that made it out
			}
			var ce *wsclient.CloseError
			if !errors.As(err, &ce) || ce.Code != int(websocket.StatusGoingAway) {
				t.Fatalf("Recv after Server.Close: %v (last message %+v)", err, m)
			}
			break
		}
		c.Close()
	}
	if _, err := wsclient.Dial(testCtx(t), url, "late"); err == nil {
		t.Fatal("Dial after Server.Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
