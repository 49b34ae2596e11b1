package agent

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
)

// TestPConnReaderEndsWhileFINIsSent: the reader may stop (a reset, a
// deadline) while Conn.Close's linger sends our FIN on another goroutine.
// Both look at finSent; the race detector found them unsynchronised in the
// NAT lab, through coturn, which resets the peer's leg when a FIN arrives.
// The reader's end is then a consequence of our own close, not a read
// error.
func TestPConnReaderEndsWhileFINIsSent(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	var wg sync.WaitGroup
	spawn := func(f func()) { wg.Add(1); go func() { defer wg.Done(); f() }() }
	pc := newPConn(1, a, nil, false, candidate.Candidate{}, spawn, t.Logf)
	ended := make(chan error, 1)
	rc := readerConfig{
		localUfrag: "ufrag", localPwd: "password", remotePwd: new(atomic.Pointer[string]),
		onSTUN: func(*pconn, *stun.Message) {},
		onEnd:  func(_ *pconn, err error) { ended <- err },
		log:    t.Logf,
	}
	spawn(func() { pc.readLoop(rc) })
	spawn(func() {
		if err := pc.sendFIN(); !errors.Is(err, errors.ErrUnsupported) { // net.Pipe has no half-close
			t.Errorf("sendFIN: %v", err)
		}
		pc.close(nil)
	})
	_ = a.SetReadDeadline(time.Now())
	if err := <-ended; !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
		t.Errorf("reader ended with %v, want the deadline or the close", err)
	}
	wg.Wait()
	// Which came first is the scheduler's choice: a deadline before the FIN
	// is a read error; after it, the end of our own connection.
	_, ended2, err := pc.q.pop()
	if !ended2 || !(errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded)) {
		t.Errorf("after our close Read gives ended=%v %v, want the close or the deadline", ended2, err)
	}
}
