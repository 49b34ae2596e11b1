package interop

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
)

// TestLibniceHalfClose is finding 1 on the agent API: the application
// writes a few bytes (or nothing) and half-closes right after Connect
// returns, as `icetcp connect` does with a short or empty stdin, while
// libnice still has 64 KiB to send. Every byte of both directions must
// arrive and libnice must reach and keep the connected (READY) state.
//
// libnice 0.1.21 takes any FIN on its selected pair's socket as the
// socket's end ("component_io_cb: error receiving message", "Selected pair
// socket ... has been destroyed, declaring failed", READY → FAILED), so
// toward it CloseWrite sends no FIN (see agent.Conn.CloseWrite). The last
// two cases half-close only once libnice is READY and let libnice start
// sending only after CloseWrite returned.
//
// libnice cannot take bytes after its own close either: closing its
// output stream shuts down the (unused, LISTEN) pseudo-TCP socket of a
// reliable agent, which goes straight to CLOSED, and from then on libnice
// drops what its TCP socket receives ("Received data on a pseudo tcp
// FAILED component. Ignoring."). So when icetcp sends bytes, libnice closes
// only once it has them; closing at once raced with them (libnice dropped
// "hello" once in 30 runs).
func TestLibniceHalfClose(t *testing.T) {
	for _, tc := range []struct {
		name            string
		niceControlling bool
		send            []byte
		waitReady       bool // half-close only once libnice is READY
		sendLate        bool // libnice starts sending only after it read icetcp's FIN
	}{
		{"libnice controlled, short", false, []byte("hello"), false, false},
		{"libnice controlled, empty", false, nil, false, false},
		{"libnice controlling, short", true, []byte("hello"), false, false},
		{"libnice controlling, empty", true, nil, false, false},
		{"libnice controlled, short, FIN after READY, libnice sends after FIN", false, []byte("hello"), true, true},
		{"libnice controlling, empty, FIN after READY, libnice sends after FIN", true, nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := StartLibnice(t, Options{Controlling: tc.niceControlling, Debug: true})
			fromPeer := randomBytes(t, 64<<10)
			closeLate := tc.sendLate || len(tc.send) > 0
			if !tc.sendLate {
				p.Send(fromPeer)
			}
			if !closeLate {
				p.Close()
			}
			s := newAgent(t, agent.Config{})
			conn := s.connect(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			if tc.waitReady {
				if err := p.WaitState(ctx, StateConnected); err != nil {
					t.Fatal(err)
				}
			}
			if len(tc.send) > 0 {
				if _, err := conn.Write(tc.send); err != nil {
					t.Fatal(err)
				}
			}
			if err := conn.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if len(tc.send) > 0 {
				if peerGot, err := p.WaitReceived(ctx, len(tc.send)); err != nil || !bytes.Equal(peerGot, tc.send) {
					t.Errorf("libnice received %q, %v; want %q", peerGot, err, tc.send)
				}
			}
			if tc.sendLate {
				p.Send(fromPeer)
			}
			if closeLate {
				p.Close()
			}
			conn.SetReadDeadline(time.Now().Add(15 * time.Second))
			got, err := io.ReadAll(conn)
			if !bytes.Equal(got, fromPeer) {
				t.Errorf("icetcp received %s (read ended with %v), libnice sent %s", sum(got), err, sum(fromPeer))
			}
			if err := p.WaitState(ctx, StateConnected); err != nil {
				t.Errorf("libnice: %v", err)
			}
			if p.Failed() {
				t.Errorf("libnice failed: states %v", p.States())
			}
			t.Logf("libnice: %s", grep(p.Log(), "libnice event state")+"; "+grep(p.Log(), "error receiving")+"; "+grep(p.Log(), "giving up"))
		})
	}
}
