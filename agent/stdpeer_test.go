package agent

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/framing"
)

// stdPeerWire is a selected connection of ours (a Conn on a pconn) whose far
// end the test reads frame by frame, as the peer would.
type stdPeerWire struct {
	c      *Conn
	mu     sync.Mutex
	frames [][]byte // what the peer received, in order
	wg     sync.WaitGroup
}

func newStdPeerWire(t *testing.T, eos bool) *stdPeerWire {
	a, err := New(baseConfig(RoleControlling))
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := net.Pipe()
	w := &stdPeerWire{}
	spawn := func(f func()) { w.wg.Add(1); go func() { defer w.wg.Done(); f() }() }
	pc := newPConn(1, ours, nil, false, candidate.Candidate{}, spawn, t.Logf)
	w.c = &Conn{a: a, pc: pc, eos: eos, maxFrame: compatFrameSize}
	spawn(func() {
		fr := framing.NewReader(theirs)
		for {
			f, err := fr.Next()
			if err != nil {
				return
			}
			w.mu.Lock()
			w.frames = append(w.frames, bytes.Clone(f))
			w.mu.Unlock()
		}
	})
	t.Cleanup(func() {
		pc.close(nil)
		theirs.Close()
		w.wg.Wait()
		a.Close()
	})
	return w
}

// kinds says what the peer received: "answer", "check" or "data", in order.
func (w *stdPeerWire) kinds() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, f := range w.frames {
		m := &stun.Message{Raw: f}
		switch {
		case !framing.IsSTUN(f) || m.Decode() != nil:
			out = append(out, "data")
		case m.Type.Class == stun.ClassSuccessResponse:
			out = append(out, "answer")
		default:
			out = append(out, "check")
		}
	}
	return out
}

func testCheck(t *testing.T) *stun.Message {
	t.Helper()
	m, err := buildRequest(checkParams{localUfrag: "ours", remoteUfrag: "peer", remotePwd: "peer-password-0123456789"}, [12]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testAnswer(t *testing.T) *stun.Message {
	t.Helper()
	m, err := buildSuccess(testCheck(t), netip.MustParseAddrPort("192.0.2.1:9"), "our-password-012345678901")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func equalKinds(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// Toward a standard agent the first application write waits until we have
// answered the peer's check on the connection (libnice sends it after
// answering our nomination, and takes an answer that arrives behind unread
// data for data), and no check of ours follows our data.
func TestStandardPeerAnswerBeforeData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newStdPeerWire(t, false)
		check := testCheck(t)
		w.c.pc.sendSTUN(check) // ours, queued before the Conn is handed out (a controlled agent's check on selection)
		wrote := make(chan error, 1)
		go func() { _, err := w.c.Write([]byte("application data")); wrote <- err }()
		time.Sleep(peerCheckWait / 2) // the peer's check comes late
		synctest.Wait()
		if got := w.kinds(); !equalKinds(got, "check") {
			t.Fatalf("before our answer the peer received %v, want only our check", got)
		}
		w.c.pc.sendSTUN(testAnswer(t)) // the peer's check arrived and is answered
		if err := <-wrote; err != nil {
			t.Fatal(err)
		}
		w.c.pc.sendSTUN(testCheck(t))  // consent, after our data: never sent
		w.c.pc.sendSTUN(testAnswer(t)) // an answer to a later check of the peer: sent
		synctest.Wait()
		if got := w.kinds(); !equalKinds(got, "check", "answer", "data", "answer") {
			t.Fatalf("the peer received %v, want check, answer, data, answer", got)
		}
		if !w.c.pc.checksEnded() {
			t.Fatal("consent still runs on a connection that carries our data to a standard agent")
		}
	})
}

// A standard agent that never checks (ICE-lite) delays the first write by
// peerCheckWait, once.
func TestStandardPeerThatNeverChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newStdPeerWire(t, false)
		start := time.Now()
		if _, err := w.c.Write([]byte("first")); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != peerCheckWait {
			t.Fatalf("first write waited %v, want %v", waited, peerCheckWait)
		}
		start = time.Now()
		if _, err := w.c.Write([]byte("second")); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("second write waited %v", waited)
		}
		synctest.Wait()
		if got := w.kinds(); !equalKinds(got, "data", "data") {
			t.Fatalf("the peer received %v", got)
		}
	})
}

// icetcp peers read STUN anywhere in the stream: nothing waits, consent
// goes on after our data.
func TestIcetcpPeerWritesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newStdPeerWire(t, true)
		start := time.Now()
		if _, err := w.c.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("first write to an icetcp peer waited %v", waited)
		}
		w.c.pc.sendSTUN(testCheck(t))
		synctest.Wait()
		if got := w.kinds(); !equalKinds(got, "data", "check") || w.c.pc.checksEnded() {
			t.Fatalf("the peer received %v (checks ended %v), want data, check", got, w.c.pc.checksEnded())
		}
	})
}
