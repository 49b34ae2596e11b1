package stuntcp

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/testnet"
)

// floodConns is how many idle connections the attacking source opens: the
// 10,050 of the review (issue 8) rounded down to what one test process may
// hold next to the server's own descriptors under the 20,000-fd limit.
const floodConns = 10000

// TestFloodFromOneSourceLeavesOthersServed is issue 8 as a test: one source
// (127.0.0.2) opens 10,000 connections and sends nothing; another source
// (127.0.0.3) must still get its Binding answered. The per-source cap turns
// all but MaxConnsPerIP of the flood away at accept, each refusal is
// counted, and the log holds one line for them, not ten thousand.
func TestFloodFromOneSourceLeavesOthersServed(t *testing.T) {
	checkLeaks(t)
	if testing.Short() {
		t.Skip("opens 10,000 connections")
	}
	var logs lockedBuffer
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	lf.Writer = &logs
	// A long first-message deadline: the accepted part of the flood stays
	// open for the whole test, as in the attack.
	srv := &Server{FirstMessageTimeout: time.Minute, LoggerFactory: lf}
	addr := startServer(t, srv)

	attacker := testnet.Dialer("127.0.0.2")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := make(chan net.Conn, floodConns)
	// A refusal can reach the attacker before its connect() returns.
	var resetAtConnect atomic.Int64
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	// A few dozen dialers: enough to be fast, few enough that the
	// server's accept queue never overflows into SYN retransmissions.
	for range 32 {
		wg.Go(func() {
			for range jobs {
				c, err := attacker.DialContext(ctx, "tcp4", addr.String())
				if errors.Is(err, syscall.ECONNRESET) {
					resetAtConnect.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("attacker dial: %v", err)
					continue // keep draining jobs
				}
				conns <- c
			}
		})
	}
	for range floodConns {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	close(conns)
	var flood []net.Conn
	for c := range conns {
		flood = append(flood, c)
	}
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	if t.Failed() {
		t.FailNow()
	}

	// Each refused connection sees its end (RST); count them.
	ended := make(chan struct{}, len(flood))
	for _, c := range flood {
		go func() {
			if _, err := c.Read(make([]byte, 1)); err != nil {
				ended <- struct{}{}
			}
		}()
	}
	wantRefused := floodConns - DefaultMaxConnsPerIP
	for i := range wantRefused - int(resetAtConnect.Load()) {
		select {
		case <-ended:
		case <-ctx.Done():
			t.Fatalf("only %d+%d of %d flood connections were turned away", resetAtConnect.Load(), i, wantRefused)
		}
	}
	t.Logf("%d flood connections reset before connect() returned, %d after", resetAtConnect.Load(), wantRefused-int(resetAtConnect.Load()))

	// The other source is answered while the flood's connections are held.
	victim := testnet.Dialer("127.0.0.3")
	c, err := victim.DialContext(ctx, "tcp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mapped, err := Binding(ctxT(t), c)
	if err != nil {
		t.Fatalf("Binding from another source during the flood: %v", err)
	}
	if mapped.String() != c.LocalAddr().String() {
		t.Fatalf("mapped %v, want %v", mapped, c.LocalAddr())
	}

	st := srv.Stats()
	if st.RefusedPerIP != uint64(wantRefused) || st.Accepted != DefaultMaxConnsPerIP+1 || st.Open != DefaultMaxConnsPerIP+1 {
		t.Errorf("stats %+v: want %d refused per IP, %d accepted and open", st, wantRefused, DefaultMaxConnsPerIP+1)
	}
	if st.Refusals()["per-ip"] != uint64(wantRefused) {
		t.Errorf("Refusals() = %v", st.Refusals())
	}
	// Logged, but at a bounded pace: the first refusal, and at most a
	// summary line if the flood outlasted the 10 s window.
	n := strings.Count(logs.String(), "refused (per-ip)")
	if n < 1 || n > 2 || !strings.Contains(logs.String(), "127.0.0.2/32") {
		t.Errorf("%d per-ip log lines:\n%.2000s", n, logs.String())
	}
}

func TestFirstMessageDeadline(t *testing.T) {
	checkLeaks(t)
	srv := &Server{FirstMessageTimeout: 100 * time.Millisecond, IdleTimeout: time.Minute}
	addr := startServer(t, srv)

	silent := dial(t, addr)
	slow := dial(t, addr) // a header's first bytes, then nothing (slowloris)
	if _, err := slow.Write([]byte{0, 1, 0, 0}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]net.Conn{"silent": silent, "slow": slow} {
		if !waitClosed(c) {
			t.Fatalf("%s connection not closed by the first-message deadline", name)
		}
	}
	if st := srv.Stats(); st.FirstMessageTimeouts != 2 {
		t.Fatalf("stats %+v, want 2 first-message timeouts", st)
	}

	// After a first request, the idle timeout applies, not the first-message one.
	ok := dial(t, addr)
	if _, err := Binding(ctxT(t), ok); err != nil {
		t.Fatal(err)
	}
	ok.SetReadDeadline(time.Now().Add(5 * srv.FirstMessageTimeout))
	if _, err := ok.Read(make([]byte, 1)); !os.IsTimeout(err) {
		t.Fatalf("served connection ended within the first-message timeout: %v", err)
	}
	ok.SetReadDeadline(time.Time{})
	if _, err := Binding(ctxT(t), ok); err != nil {
		t.Fatalf("served connection unusable: %v", err)
	}
}
