package wsclient_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/rendezvous"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// The client against the real rendezvous: the tests of what the server
// does with what clients send are in package rendezvous.

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
func startServer(t *testing.T, s *rendezvous.Server) string {
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

func TestExchangeAllTypes(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &rendezvous.Server{})
	a := dial(t, url, "room-1")
	b := dial(t, url, "room-1")
	if a.Members() != 1 || b.Members() != 2 || b.Room() != "room-1" {
		t.Fatalf("members a=%d b=%d room=%q", a.Members(), b.Members(), b.Room())
	}
	for _, dir := range []struct {
		name     string
		from, to *wsclient.Client
	}{{"a→b", a, b}, {"b→a", b, a}} {
		t.Run(dir.name, func(t *testing.T) {
			// Concurrent Send and Recv, as the agent will use them.
			errc := make(chan error, 1)
			go func() {
				for _, m := range agentMessages() {
					if err := dir.from.Send(testCtx(t), m); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			for _, want := range agentMessages() {
				if got := recv(t, dir.to); !reflect.DeepEqual(got, want) {
					t.Fatalf("got %+v, want %+v", got, want)
				}
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := a.Send(testCtx(t), signaling.Message{Type: signaling.TypePeerLeft}); !errors.Is(err, signaling.ErrRendezvousOnly) {
		t.Fatalf("sending peer-left: %v", err)
	}
	if err := a.Send(testCtx(t), signaling.Message{Type: signaling.TypeCandidate}); !errors.Is(err, signaling.ErrInvalidMessage) {
		t.Fatalf("sending an empty candidate: %v", err)
	}
}

func TestClientClosePeerLeft(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &rendezvous.Server{})
	a := dial(t, url, "c")
	b := dial(t, url, "c")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, b); m.Type != signaling.TypePeerLeft {
		t.Fatalf("got %+v, want peer-left", m)
	}
	if err := a.Send(testCtx(t), signaling.Message{Type: signaling.TypeBye}); !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if _, err := a.Recv(testCtx(t)); !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseUnblocksRecv(t *testing.T) {
	checkGoroutines(t)
	url := startServer(t, &rendezvous.Server{})
	a := dial(t, url, "u")
	errc := make(chan error, 1)
	go func() {
		_, err := a.Recv(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.Close()
	if err := <-errc; !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("blocked Recv returned %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := dial(t, url, "u")
	if _, err := b.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with cancelled ctx: %v", err)
	}
}

func TestDialErrors(t *testing.T) {
	checkGoroutines(t)
	ts := httptest.NewServer(&rendezvous.Server{})
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	ts.Close()
	if _, err := wsclient.Dial(testCtx(t), url, "r"); err == nil || !strings.HasPrefix(err.Error(), "wsclient: dial ") {
		t.Fatalf("Dial to a closed server: %v", err)
	}
}
