//go:build unix

package tcpso

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func TestScheduleDefaultsAndDelay(t *testing.T) {
	s := Schedule{}.withDefaults()
	want := Schedule{Interval: 50 * time.Millisecond, MaxInterval: 80 * time.Millisecond,
		AttemptTimeout: 2 * time.Second, Rush: DefaultRush, RushGap: DefaultRushGap, RushBurst: DefaultRushBurst, Jitter: DefaultJitter}
	if s != want {
		t.Fatalf("defaults = %+v, want %+v", s, want)
	}
	for i, w := range []time.Duration{50, 80, 80} {
		if got := s.delay(i + 1); got != w*time.Millisecond {
			t.Errorf("delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := (Schedule{Interval: time.Second, MaxInterval: time.Millisecond}).withDefaults().delay(3); got != time.Second {
		t.Errorf("MaxInterval below Interval: delay = %v, want Interval", got)
	}
	off := Schedule{Rush: -1, Jitter: -1, RushGap: -1, RushBurst: -1}.withDefaults()
	if off.Rush != 0 || off.Jitter != 0 || off.RushGap != 0 || off.RushBurst != 0 {
		t.Errorf("negative Rush/Jitter/RushGap/RushBurst = %v/%v/%v/%v, want off", off.Rush, off.Jitter, off.RushGap, off.RushBurst)
	}
	for _, tc := range []struct {
		jitter, u float64
		want      time.Duration
	}{{0.5, 0, 50}, {0.5, 0.5, 100}, {0.5, 0.999999, 149}, {2, 0, 0}, {-1, 0.9, 100}} {
		s := Schedule{Jitter: tc.jitter}.withDefaults()
		if got := s.jittered(100*time.Millisecond, tc.u).Truncate(time.Millisecond); got != tc.want*time.Millisecond {
			t.Errorf("jitter %v u %v: %v, want %v", tc.jitter, tc.u, got, tc.want*time.Millisecond)
		}
	}
	// The overlap argument (see Schedule): with a rush, no back-off is
	// longer than half of it, whatever Interval, MaxInterval and jitter
	// say; without a rush the back-off is as configured.
	long := Schedule{Interval: time.Second, MaxInterval: 5 * time.Second}.withDefaults()
	for n := 1; n < 10; n++ {
		for _, u := range []float64{0, 0.5, 0.999} {
			if got := long.backoff(n, u); got > DefaultRush/2 {
				t.Fatalf("backoff(%d, %v) = %v, longer than half a rush", n, u, got)
			}
		}
	}
	if got := (Schedule{Interval: time.Second, Rush: -1, Jitter: -1}).withDefaults().backoff(1, 0); got != time.Second {
		t.Errorf("no rush: backoff = %v, want 1s", got)
	}
}

// fakeNet scripts the outcome of each connect and records when it was made
// and with which TTL, under testing/synctest's fake clock.
type fakeNet struct {
	outcomes []error // nil: success; errHang: block until ctx ends; a fakeWait: take that long first
	times    []time.Duration
	ttls     []int
	t0       time.Time
	floats   []float64 // back-off randomness, cycled; none: 0.5 (no jitter)
}

var errHang = errors.New("hang")

// fakeWait makes a connect take d before it fails with err.
type fakeWait struct {
	d   time.Duration
	err error
}

func (w fakeWait) Error() string { return w.err.Error() }

func newFake(outcomes ...error) *fakeNet { return &fakeNet{outcomes: outcomes, t0: time.Now()} }

func (f *fakeNet) env() env {
	n := 0
	return env{dial: f.dial, float: func() float64 {
		if len(f.floats) == 0 {
			return 0.5
		}
		n++
		return f.floats[(n-1)%len(f.floats)]
	}}
}

func (f *fakeNet) dial(ctx context.Context, local, remote netip.AddrPort, ttl int) (*net.TCPConn, error) {
	f.times = append(f.times, time.Since(f.t0))
	f.ttls = append(f.ttls, ttl)
	i := len(f.times) - 1
	var err error
	if i < len(f.outcomes) {
		err = f.outcomes[i]
	}
	if w, ok := err.(fakeWait); ok {
		time.Sleep(w.d) // synctest's fake clock: the connect's modelled duration, not synchronisation
		err = w.err
	}
	fail := func(e error) error {
		return &ConnectError{Local: local, Remote: remote, Err: &net.OpError{Op: "dial", Err: e}}
	}
	switch {
	case err == nil:
		return &net.TCPConn{}, nil
	case errors.Is(err, errHang):
		<-ctx.Done()
		return nil, fail(ctx.Err())
	case errors.As(err, new(*TimeExceededError)):
		return nil, fail(err)
	default:
		return nil, fail(os.NewSyscallError("connect", err))
	}
}

var (
	pLocal  = netip.MustParseAddrPort("10.0.0.1:5000")
	pRemote = netip.MustParseAddrPort("198.51.100.2:6000")
	timeEx  = &TimeExceededError{From: netip.MustParseAddr("203.0.113.254"), Errno: syscall.EHOSTUNREACH}
)

func ms(xs ...int) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// TestScheduleTimingSynctest pins when every SYN leaves, case by case.
func TestScheduleTimingSynctest(t *testing.T) {
	refused, busy := syscall.ECONNREFUSED, syscall.EADDRNOTAVAIL
	for _, tc := range []struct {
		name     string
		p        Punch
		startIn  time.Duration // Punch.Start this far in the bubble's future
		outcomes []error
		floats   []float64
		times    []time.Duration
		ttls     []int
		attempts int
	}{{
		name:     "rush: refusals answered at once, one attempt",
		outcomes: []error{refused, refused, refused, nil},
		times:    ms(0, 0, 0, 0), attempts: 1,
	}, {
		name:     "rush capped by RushSYNs, then back-off",
		p:        Punch{Schedule: Schedule{RushSYNs: 2}},
		outcomes: []error{refused, refused, refused, nil},
		times:    ms(0, 0, 50, 50), attempts: 2,
	}, {
		name:     "rush capped by time: each refusal takes 100 ms",
		p:        Punch{Schedule: Schedule{Rush: 250 * time.Millisecond}},
		outcomes: []error{fakeWait{100 * time.Millisecond, refused}, fakeWait{100 * time.Millisecond, refused}, fakeWait{100 * time.Millisecond, refused}, nil},
		times:    ms(0, 100, 200, 350), attempts: 2,
	}, {
		name:     "after the burst, a gap between SYNs",
		p:        Punch{Schedule: Schedule{RushBurst: 2, RushGap: 10 * time.Millisecond}},
		outcomes: []error{refused, refused, refused, refused, nil},
		times:    ms(0, 0, 10, 20, 30), attempts: 1,
	}, {
		name:     "jittered gaps",
		p:        Punch{Schedule: Schedule{RushBurst: -1, RushGap: 10 * time.Millisecond}},
		floats:   []float64{0, 0.9, 0.5},
		outcomes: []error{refused, refused, refused, nil},
		times:    ms(0, 5, 19, 29), attempts: 1,
	}, {
		name:     "no gap when the answer took longer",
		p:        Punch{Schedule: Schedule{RushBurst: -1, RushGap: 10 * time.Millisecond}},
		outcomes: []error{fakeWait{15 * time.Millisecond, refused}, fakeWait{15 * time.Millisecond, refused}, nil},
		times:    ms(0, 15, 30), attempts: 1,
	}, {
		name:     "no rush: every refusal backs off, doubling up to MaxInterval",
		p:        Punch{Schedule: Schedule{Rush: -1}},
		outcomes: []error{refused, refused, refused, nil},
		times:    ms(0, 50, 130, 210), attempts: 4,
	}, {
		name:     "jittered back-off",
		p:        Punch{Schedule: Schedule{Rush: -1}},
		floats:   []float64{0, 0.75},
		outcomes: []error{refused, refused, nil},
		times:    ms(0, 25, 125), attempts: 3,
	}, {
		name:     "a back-off is at most half a rush",
		p:        Punch{Schedule: Schedule{RushSYNs: 1, Interval: time.Hour, MaxInterval: time.Hour}},
		outcomes: []error{refused, refused, nil},
		times:    ms(0, 125, 250), attempts: 3,
	}, {
		name:     "silence: a new attempt at once, no back-off",
		p:        Punch{Schedule: Schedule{AttemptTimeout: time.Second}},
		outcomes: []error{errHang, errHang, nil},
		times:    ms(0, 1000, 2000), attempts: 3,
	}, {
		name:     "a SYN lost in the rush is replaced after 4 answer times, at least 50 ms",
		outcomes: []error{fakeWait{time.Millisecond, refused}, errHang, fakeWait{20 * time.Millisecond, refused}, errHang, nil},
		times:    ms(0, 1, 51, 71, 151), attempts: 1,
	}, {
		name:     "busy backs off",
		outcomes: []error{busy, busy, nil},
		times:    ms(0, 50, 130), attempts: 3,
	}, {
		name:     "primed: a full-TTL SYN follows the ICMP at once",
		p:        Punch{PrimeTTL: 2, Schedule: Schedule{AttemptTimeout: time.Second}},
		outcomes: []error{timeEx, errHang, timeEx, nil},
		times:    ms(0, 0, 1000, 1000), ttls: []int{2, 0, 2, 0}, attempts: 2,
	}, {
		name:     "time exceeded on a full-TTL SYN is unreachable: rushed like one",
		outcomes: []error{timeEx, nil},
		times:    ms(0, 0), attempts: 1,
	}, {
		name:     "start and delay",
		p:        Punch{Delay: 30 * time.Millisecond},
		startIn:  5 * time.Second,
		outcomes: []error{nil},
		times:    ms(5030), attempts: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(tc.outcomes...)
				f.floats = tc.floats
				p := tc.p
				if tc.startIn > 0 {
					p.Start = f.t0.Add(tc.startIn)
				}
				p.Local, p.Remote = pLocal, pRemote
				var seen []Try
				p.OnTry = func(t Try) { seen = append(seen, t) }
				r, err := open(t.Context(), p, f.env())
				if err != nil || r.Conn == nil {
					t.Fatalf("err = %v", err)
				}
				if !slices.Equal(f.times, tc.times) {
					t.Errorf("SYNs at %v, want %v", f.times, tc.times)
				}
				if tc.ttls != nil && !slices.Equal(f.ttls, tc.ttls) {
					t.Errorf("TTLs %v, want %v", f.ttls, tc.ttls)
				}
				if r.Attempts != tc.attempts || r.SYNs != len(tc.times) || r.Accepted {
					t.Errorf("result attempts %d SYNs %d accepted %v, want %d %d false", r.Attempts, r.SYNs, r.Accepted, tc.attempts, len(tc.times))
				}
				if len(seen) != len(tc.times) || !slices.Equal(seen, r.Tries) || seen[len(seen)-1].Outcome != OutcomeConnected {
					t.Errorf("OnTry saw %v, result has %v", seen, r.Tries)
				}
			})
		})
	}
}

func TestOpenErrorSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tests := []struct {
			outcomes []error
			sched    Schedule
			prime    int
			reason   string
			text     string
		}{
			{[]error{errHang, errHang}, Schedule{Attempts: 2}, 0, "no-answer", "2 attempts (2 timed out) [1: 1 timed out | 2: 1 timed out]"},
			{[]error{syscall.ENETUNREACH, syscall.EHOSTUNREACH}, Schedule{Attempts: 1, RushSYNs: 2}, 0, "unreachable", "1 attempt, 2 SYNs (2 unreachable)"},
			{[]error{syscall.ECONNREFUSED, syscall.ECONNREFUSED, errHang}, Schedule{Attempts: 2, RushSYNs: 2}, 0, "mixed",
				"2 attempts, 3 SYNs (2 refused, 1 timed out) [1: 2 refused | 2: 1 timed out]"},
			{[]error{timeEx, syscall.ECONNREFUSED}, Schedule{Attempts: 1, RushSYNs: 2}, 2, "refused", "1 attempt, 2 SYNs (1 primed, 1 refused)"},
			{[]error{syscall.EADDRNOTAVAIL}, Schedule{Attempts: 1}, 0, "busy", "1 attempt (1 busy)"},
			{[]error{syscall.EACCES}, Schedule{Attempts: 2}, 0, "other", "1 attempt (1 other)"},
		}
		for _, tt := range tests {
			f := newFake(tt.outcomes...)
			_, err := open(t.Context(), Punch{Local: pLocal, Remote: pRemote, PrimeTTL: tt.prime, Schedule: tt.sched}, f.env())
			var oe *OpenError
			if !errors.As(err, &oe) {
				t.Fatalf("%v: err = %v", tt.outcomes, err)
			}
			if oe.Reason() != tt.reason {
				t.Errorf("%v: reason %q, want %q", tt.outcomes, oe.Reason(), tt.reason)
			}
			wantPrefix := "tcpso: simultaneous open " + pLocal.String() + "->" + pRemote.String() + ": " + tt.text + ": "
			if got := err.Error(); !strings.HasPrefix(got, wantPrefix) {
				t.Errorf("error %q, want prefix %q", got, wantPrefix)
			}
			if n := oe.Primed + oe.Refused + oe.Unreachable + oe.TimedOut + oe.Busy + oe.Other; n != len(oe.Tries) || oe.SYNs != len(oe.Tries) {
				t.Errorf("%v: counts %d, SYNs %d, tries %d", tt.outcomes, n, oe.SYNs, len(oe.Tries))
			}
		}
		if _, err := open(t.Context(), Punch{Local: pLocal, Remote: pRemote}, newFake(timeEx, syscall.EACCES).env()); !errors.Is(err, syscall.EACCES) {
			t.Errorf("err %v does not wrap the last errno", err)
		}
	})
}

// TestCancelSynctest cancels before the start, inside a SYN's wait and
// during a back-off; the punch returns at once, canceled, with the SYNs it
// made, the cut one under no count.
func TestCancelSynctest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		outcomes []error
		start    time.Duration
		syns     int
		counted  int
	}{
		{"before start", nil, time.Hour, 0, 0},
		{"inside a SYN's wait", []error{errHang}, 0, 1, 0},
		{"during back-off", []error{syscall.EADDRNOTAVAIL}, 0, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(tc.outcomes...)
				ctx, cancel := context.WithCancel(t.Context())
				var start time.Time
				if tc.start > 0 {
					start = time.Now().Add(tc.start)
				}
				done := make(chan error, 1)
				go func() {
					_, err := open(ctx, Punch{Local: pLocal, Remote: pRemote, Start: start,
						Schedule: Schedule{AttemptTimeout: time.Hour, Interval: time.Hour}}, f.env())
					done <- err
				}()
				synctest.Wait() // the punch is blocked: at its start, in its SYN, or in its back-off
				t0 := time.Now()
				cancel()
				err := <-done
				if d := time.Since(t0); d != 0 {
					t.Errorf("returned %v after cancel", d)
				}
				var oe *OpenError
				if !errors.As(err, &oe) || !oe.Canceled || oe.SYNs != tc.syns || oe.Reason() != "canceled" || !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v (%+v)", err, oe)
				}
				if n := oe.Refused + oe.TimedOut + oe.Unreachable + oe.Busy + oe.Other; n != tc.counted {
					t.Errorf("%d SYNs counted, want %d: %+v", n, tc.counted, oe)
				}
			})
		})
	}
}
