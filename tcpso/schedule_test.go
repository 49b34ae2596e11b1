package tcpso

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestScheduleDefaultsAndDelay(t *testing.T) {
	s := Schedule{}.withDefaults()
	if s != (Schedule{Attempts: 10, Interval: 100 * time.Millisecond, MaxInterval: time.Second, AttemptTimeout: 2 * time.Second}) {
		t.Fatalf("defaults = %+v", s)
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := s.delay(i + 1); got != w*time.Millisecond {
			t.Errorf("delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := (Schedule{Interval: time.Second, MaxInterval: time.Millisecond}).withDefaults().delay(3); got != time.Second {
		t.Errorf("MaxInterval below Interval: delay = %v, want Interval", got)
	}
}

// fakeNet scripts the outcome of each connect attempt and records when it
// was made, under testing/synctest's fake clock.
type fakeNet struct {
	outcomes []error // nil: success; errHang: block until ctx ends
	times    []time.Time
}

var errHang = errors.New("hang")

func (f *fakeNet) dial(ctx context.Context, local, remote netip.AddrPort, _ int) (*net.TCPConn, error) {
	f.times = append(f.times, time.Now())
	i := len(f.times) - 1
	var err error
	if i < len(f.outcomes) {
		err = f.outcomes[i]
	}
	switch {
	case err == nil:
		return &net.TCPConn{}, nil
	case errors.Is(err, errHang):
		<-ctx.Done()
		return nil, &ConnectError{Local: local, Remote: remote, Err: &net.OpError{Op: "dial", Err: ctx.Err()}}
	default:
		return nil, &ConnectError{Local: local, Remote: remote, Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", err)}}
	}
}

var (
	pLocal  = netip.MustParseAddrPort("10.0.0.1:5000")
	pRemote = netip.MustParseAddrPort("198.51.100.2:6000")
)

func TestScheduleTimingSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeNet{outcomes: []error{syscall.ECONNREFUSED, syscall.EHOSTUNREACH, errHang, syscall.EADDRNOTAVAIL, nil}}
		t0 := time.Now()
		start := t0.Add(5 * time.Second)
		c, err := simultaneousOpen(context.Background(), Punch{Local: pLocal, Remote: pRemote, Start: start}, f.dial)
		if err != nil || c == nil {
			t.Fatalf("err = %v", err)
		}
		// Start, then waits of 100, 200, (2 s timeout +) 400, 800 ms.
		want := []time.Duration{5000, 5100, 5300, 7700, 8500}
		if len(f.times) != len(want) {
			t.Fatalf("%d attempts, want %d", len(f.times), len(want))
		}
		for i, w := range want {
			if got := f.times[i].Sub(t0); got != w*time.Millisecond {
				t.Errorf("attempt %d at %v, want %v", i+1, got, w*time.Millisecond)
			}
		}
	})
}

func TestOpenErrorCountsSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tests := []struct {
			outcomes []error
			reason   string
			text     string
		}{
			{[]error{errHang, errHang}, "no-answer", "2 attempts (2 timed out)"},
			{[]error{syscall.ENETUNREACH, syscall.EHOSTUNREACH}, "unreachable", "2 attempts (2 unreachable)"},
			{[]error{syscall.ECONNREFUSED, errHang}, "mixed", "2 attempts (1 refused, 1 timed out)"},
			{[]error{syscall.EACCES}, "other", "1 attempt (1 other)"},
		}
		for _, tt := range tests {
			f := &fakeNet{outcomes: tt.outcomes}
			_, err := simultaneousOpen(context.Background(), Punch{Local: pLocal, Remote: pRemote, Schedule: Schedule{Attempts: 2}}, f.dial)
			var oe *OpenError
			if !errors.As(err, &oe) {
				t.Fatalf("%v: err = %v", tt.outcomes, err)
			}
			if oe.Reason() != tt.reason {
				t.Errorf("%v: reason %q, want %q", tt.outcomes, oe.Reason(), tt.reason)
			}
			wantPrefix := fmt.Sprintf("tcpso: simultaneous open %s->%s: %s: ", pLocal, pRemote, tt.text)
			if got := err.Error(); len(got) < len(wantPrefix) || got[:len(wantPrefix)] != wantPrefix {
				t.Errorf("error %q, want prefix %q", got, wantPrefix)
			}
		}
	})
}

func TestCancelSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			outcomes []error
			start    time.Duration
			attempts int
		}{
			{"before start", nil, time.Hour, 0},
			{"inside an attempt", []error{errHang}, 0, 1},
		} {
			f := &fakeNet{outcomes: tc.outcomes}
			ctx, cancel := context.WithCancel(context.Background())
			var start time.Time
			if tc.start > 0 {
				start = time.Now().Add(tc.start)
			}
			done := make(chan error, 1)
			go func() {
				_, err := simultaneousOpen(ctx, Punch{Local: pLocal, Remote: pRemote, Start: start,
					Schedule: Schedule{AttemptTimeout: time.Hour}}, f.dial)
				done <- err
			}()
			time.Sleep(time.Second)
			t0 := time.Now()
			cancel()
			err := <-done
			if d := time.Since(t0); d != 0 {
				t.Errorf("%s: returned %v after cancel", tc.name, d)
			}
			var oe *OpenError
			if !errors.As(err, &oe) || !oe.Canceled || oe.Attempts != tc.attempts || !errors.Is(err, context.Canceled) {
				t.Errorf("%s: err = %v (%+v)", tc.name, err, oe)
			}
			if oe.Refused+oe.TimedOut+oe.Unreachable+oe.Other != 0 {
				t.Errorf("%s: canceled attempt counted under an outcome: %+v", tc.name, oe)
			}
		}
	})
}
