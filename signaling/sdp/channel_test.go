package sdp

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/icetcp/icetcp/signaling"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func recvN(t *testing.T, c *Channel, n int) []signaling.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []signaling.Message
	for range n {
		m, err := c.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv after %d messages: %v", len(out), err)
		}
		out = append(out, m)
	}
	return out
}

func TestChannelLocalLines(t *testing.T) {
	var mu sync.Mutex
	var got [][]string
	c := NewChannel(ChannelConfig{OnLocal: func(l []string) {
		mu.Lock()
		got = append(got, l)
		mu.Unlock()
	}})
	defer c.Close()
	ctx := context.Background()
	for _, m := range []signaling.Message{
		{Type: signaling.TypeCredentials, Ufrag: ufrag, Pwd: pwd, Tiebreaker: 7, Role: signaling.RoleControlling},
		{Type: signaling.TypeCandidate, Candidate: tcpC},
		{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: 1, Phase: signaling.PunchPing}},
		{Type: signaling.TypeCandidate, Candidate: tcpP},
		{Type: signaling.TypeEndOfCandidates},
		{Type: signaling.TypeBye, Reason: "done"},
	} {
		if err := c.Send(ctx, m); err != nil {
			t.Fatalf("Send(%s): %v", m.Type, err)
		}
	}
	want := [][]string{
		{"a=ice-ufrag:" + ufrag, "a=ice-pwd:" + pwd, "a=ice-options:trickle"},
		{"a=" + tcpC}, {"a=" + tcpP}, {"a=end-of-candidates"},
	}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OnLocal got %q\nwant %q", got, want)
	}
	select {
	case <-c.LocalDone():
	default:
		t.Error("LocalDone not closed after end-of-candidates")
	}
	local := c.Local()
	wantLocal := Attributes{Ufrag: ufrag, Pwd: pwd, Options: []string{"trickle"}, Candidates: []string{tcpC, tcpP}, EndOfCandidates: true}
	if !reflect.DeepEqual(local, wantLocal) {
		t.Errorf("Local() = %+v", local)
	}
	if err := c.Send(ctx, signaling.Message{Type: signaling.TypeCredentials, Ufrag: "x"}); !errors.Is(err, signaling.ErrInvalidMessage) {
		t.Errorf("Send of a bad message: %v, want ErrInvalidMessage", err)
	}
}

func TestChannelRemote(t *testing.T) {
	for _, tc := range []struct {
		name     string
		offerer  bool
		lite     string
		wantRole string // the role the remote agent is told to have
	}{
		{"we offer", true, "", signaling.RoleControlled},
		{"we answer", false, "", signaling.RoleControlling},
		{"we answer a lite offerer", false, "a=ice-lite\n", signaling.RoleControlled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChannel(ChannelConfig{Offerer: tc.offerer})
			defer c.Close()
			// A trickled candidate before the description, the
			// description, the same candidate again, then the end.
			if err := c.AddRemote(tcpP); err != nil {
				t.Fatal(err)
			}
			desc := tc.lite + "m=application 9 TCP/DTLS/SCTP x\na=ice-ufrag:" + ufrag + "\na=ice-pwd:" + pwd + "\na=" + tcpC + "\na=" + tcpP + "\n"
			if err := c.AddRemote(desc); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if err := c.AddRemote("a=end-of-candidates"); err != nil {
					t.Fatal(err)
				}
			}
			got := recvN(t, c, 4)
			want := []signaling.Message{
				{V: 1, Type: signaling.TypeCandidate, Candidate: tcpP},
				{V: 1, Type: signaling.TypeCredentials, Ufrag: ufrag, Pwd: pwd, Role: tc.wantRole},
				{V: 1, Type: signaling.TypeCandidate, Candidate: tcpC},
				{V: 1, Type: signaling.TypeEndOfCandidates},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			// Every message passes the schema the agent's other channels use.
			for _, m := range got {
				if _, err := signaling.Encode(m); err != nil {
					t.Errorf("message %+v fails the schema: %v", m, err)
				}
			}
			c.RemoteGone()
			if m := recvN(t, c, 1)[0]; m.Type != signaling.TypePeerLeft {
				t.Errorf("after RemoteGone: %+v, want peer-left", m)
			}
			if _, err := c.Recv(context.Background()); !errors.Is(err, signaling.ErrPeerLeft) {
				t.Errorf("second Recv after RemoteGone: %v, want ErrPeerLeft", err)
			}
		})
	}
}

// SDP that AddRemote cannot use breaks the Channel: Recv says so after
// what was queued before, so the agent fails at once (it used to wait for
// credentials that would never come, until its deadline).
func TestChannelBadRemote(t *testing.T) {
	c := NewChannel(ChannelConfig{})
	defer c.Close()
	if err := c.AddRemote(tcpC); err != nil {
		t.Fatal(err)
	}
	err := c.AddRemote("a=ice-ufrag:" + ufrag)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("AddRemote without a pwd: %v, want ErrInvalid", err)
	}
	if strings.Count(err.Error(), "sdp:") != 1 {
		t.Errorf("AddRemote's error %q: want one sdp: prefix", err)
	}
	if m := recvN(t, c, 1)[0]; m.Type != signaling.TypeCandidate {
		t.Errorf("first Recv: %+v, want the candidate queued before the bad input", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var re *RemoteError
	if m, err := c.Recv(ctx); !errors.As(err, &re) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Recv after a rejected description: %+v, %v; want a *RemoteError wrapping ErrInvalid", m, err)
	} else if strings.Count(err.Error(), "sdp:") != 1 || !strings.Contains(err.Error(), "a=ice-ufrag without a=ice-pwd") {
		t.Errorf("Recv's error %q: want one sdp: prefix and the cause", err)
	}
	if err := c.AddRemote("a=ice-ufrag:" + ufrag + "\na=ice-pwd:" + pwd); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddRemote after a failure: %v, want the same error", err)
	}
}

func TestChannelClose(t *testing.T) {
	c := NewChannel(ChannelConfig{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Recv(context.Background())
		done <- err
	}()
	c.Close()
	c.Close()
	if err := <-done; !errors.Is(err, signaling.ErrClosed) {
		t.Errorf("blocked Recv after Close: %v, want ErrClosed", err)
	}
	if err := c.Send(context.Background(), signaling.Message{Type: signaling.TypeEndOfCandidates}); !errors.Is(err, signaling.ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if err := c.AddRemote(tcpC); !errors.Is(err, signaling.ErrClosed) {
		t.Errorf("AddRemote after Close: %v", err)
	}
}
