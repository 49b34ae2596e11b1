//go:build unix

package tcpso

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// twoNATs models two peers behind NATs that answer an unsolicited SYN with
// RST, in virtual time (testing/synctest): a SYN crosses the peer's when it
// leaves while one of the peer's is out (sent less than rtt ago, the RST
// not yet back), and both connects then succeed; otherwise it is refused
// after rtt. That is what two Linux NATs do (see Schedule): the peer's SYN
// finds our NAT open only between our SYN leaving and the far NAT's RST
// coming back.
type twoNATs struct {
	rtt time.Duration

	mu      sync.Mutex // guards the fields below
	out     [2]*syn    // each side's SYN in flight; nil: none
	sent    [2][]time.Duration
	t0      time.Time
	starved [2][][2]time.Duration // per side, intervals its process does not run
}

type syn struct {
	at      time.Time
	crossed chan struct{}
}

func newTwoNATs(rtt time.Duration) *twoNATs { return &twoNATs{rtt: rtt, t0: time.Now()} }

// env is side i's network, with its own seeded randomness.
func (w *twoNATs) env(i int, seed uint64) env {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	return env{float: rng.Float64, dial: func(ctx context.Context, local, remote netip.AddrPort, _ int) (*net.TCPConn, error) {
		return w.dial(ctx, i, local, remote)
	}}
}

// run waits while side i's process is starved: a SYN leaves, and an
// answer is taken in, only when the process runs.
func (w *twoNATs) run(i int) {
	w.mu.Lock()
	now := time.Since(w.t0)
	var until time.Duration
	for _, iv := range w.starved[i] {
		if now >= iv[0] && now < iv[1] {
			until = iv[1]
		}
	}
	w.mu.Unlock()
	if until > 0 {
		time.Sleep(until - now) // virtual time: the process is not running
	}
}

func (w *twoNATs) dial(ctx context.Context, i int, local, remote netip.AddrPort) (*net.TCPConn, error) {
	w.run(i)
	defer w.run(i)
	w.mu.Lock()
	now := time.Now()
	w.sent[i] = append(w.sent[i], now.Sub(w.t0))
	if o := w.out[1-i]; o != nil && now.Sub(o.at) < w.rtt {
		w.out[1-i] = nil
		close(o.crossed)
		w.mu.Unlock()
		return &net.TCPConn{}, nil
	}
	me := &syn{at: now, crossed: make(chan struct{})}
	w.out[i] = me
	w.mu.Unlock()
	t := time.NewTimer(w.rtt)
	defer t.Stop()
	var err error
	select {
	case <-me.crossed:
		return &net.TCPConn{}, nil
	case <-t.C:
		err = syscall.ECONNREFUSED
	case <-ctx.Done():
		err = ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out[i] == me {
		w.out[i] = nil
	} else if err == syscall.ECONNREFUSED {
		select {
		case <-me.crossed: // crossed at the same instant as the RST
			return &net.TCPConn{}, nil
		default:
		}
	}
	return nil, &ConnectError{Local: local, Remote: remote, Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", err)}}
}

// punchPair punches from both sides, B starting late after A, until both
// return; it reports each side's result, error and when it returned.
func punchPair(ctx context.Context, w *twoNATs, seed uint64, late time.Duration, s Schedule) (res [2]Result, errs [2]error, took [2]time.Duration) {
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 2 {
		p := Punch{Local: pLocal, Remote: pRemote, Schedule: s}
		if i == 1 {
			p.Delay = late
		}
		wg.Go(func() {
			res[i], errs[i] = open(ctx, p, w.env(i, seed))
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	return res, errs, took
}

// TestPunchOverlapsOutOfStep: two punchers whatever their offset connect,
// on a path whose RSTs come back in 50 µs (two NATs one segment apart: the
// NAT lab at 0 ms). The old schedule (a rush of 200 SYNs at once, spent
// in 10 ms here; back-offs of 0.1 to 1 s ±50 %; 10 attempts) lost most
// late starts from a few tens of milliseconds on: each side's short rush
// fell into the other's long back-off, attempt after attempt, until one
// gave up.
func TestPunchOverlapsOutOfStep(t *testing.T) {
	for _, late := range []time.Duration{0, 3 * time.Millisecond, 30 * time.Millisecond, 120 * time.Millisecond,
		240 * time.Millisecond, 260 * time.Millisecond, 400 * time.Millisecond, time.Second, 3 * time.Second} {
		t.Run(late.String(), func(t *testing.T) {
			var worst time.Duration
			for seed := range uint64(20) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					defer cancel()
					w := newTwoNATs(50 * time.Microsecond)
					res, errs, took := punchPair(ctx, w, seed, late, Schedule{})
					if errs[0] != nil || errs[1] != nil {
						t.Fatalf("seed %d: A: %v; B: %v", seed, errs[0], errs[1])
					}
					if res[0].Conn == nil || res[1].Conn == nil {
						t.Fatalf("seed %d: no connection", seed)
					}
					// From B's first SYN, both must be through within
					// a rush and a back-off: B's rush overlaps A's
					// activity by half a rush at least, and 125 ms of
					// paced SYNs on both sides miss each other with
					// probability ~e^-5 here.
					if d := max(took[0], took[1]) - late; d > worst {
						worst = d
					}
				})
			}
			t.Logf("B %v late: connected at most %v after B's first SYN (20 seeds)", late, worst)
			if worst > DefaultRush+DefaultRush/2 {
				t.Errorf("B %v late: a punch took %v after B's start, want at most a rush and a back-off", late, worst)
			}
		})
	}
}

// TestPunchStarvedSide: a side that does not run for a while (a busy host:
// its SYNs and the handling of its answers wait) still meets the peer,
// who keeps punching until its deadline instead of giving up after a fixed
// number of attempts. A starves for 0.3 to 3 s right after its first SYN.
func TestPunchStarvedSide(t *testing.T) {
	for _, starve := range []time.Duration{300 * time.Millisecond, time.Second, 3 * time.Second} {
		t.Run(starve.String(), func(t *testing.T) {
			for seed := range uint64(10) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					defer cancel()
					w := newTwoNATs(50 * time.Microsecond)
					w.starved[0] = [][2]time.Duration{{time.Microsecond, starve}}
					res, errs, took := punchPair(ctx, w, seed, 2*time.Millisecond, Schedule{})
					if errs[0] != nil || errs[1] != nil || res[0].Conn == nil || res[1].Conn == nil {
						t.Fatalf("seed %d: A: %v; B: %v", seed, errs[0], errs[1])
					}
					if d := max(took[0], took[1]) - starve; d > DefaultRush+DefaultRush/2 {
						t.Errorf("seed %d: connected %v after A ran again", seed, d)
					}
				})
			}
		})
	}
}

// TestRushLastsItsTime: against a peer that never punches, on a path whose
// RSTs come back in 50 µs, a rush spreads its SYNs over its whole time
// (the old one spent 200 SYNs in 10 ms here), a burst first and then never
// two SYNs closer than the gap's low end; the SYN rate stays bounded.
func TestRushLastsItsTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newTwoNATs(50 * time.Microsecond)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		var first []time.Duration // when the first attempt's SYNs left
		onTry := func(tr Try) {
			if tr.Attempt == 1 {
				first = append(first, tr.At)
			}
		}
		_, err := open(ctx, Punch{Local: pLocal, Remote: pRemote, OnTry: onTry}, w.env(0, 1))
		var oe *OpenError
		if !errors.As(err, &oe) || !oe.Expired || oe.Canceled || oe.Reason() != "refused" {
			t.Fatalf("err = %v (%+v)", err, oe)
		}
		span := first[len(first)-1] - first[0]
		if span < DefaultRush-2*DefaultRushGap || span > DefaultRush+2*DefaultRushGap {
			t.Errorf("the first rush spans %v, want about %v", span, DefaultRush)
		}
		low := time.Duration(float64(DefaultRushGap) * (1 - DefaultJitter))
		if burst := first[DefaultRushBurst-1]; burst > DefaultRushBurst*w.rtt {
			t.Errorf("the burst's last SYN left at %v, want each SYN at once after the previous answer", burst)
		}
		for i := DefaultRushBurst; i < len(first); i++ {
			if d := first[i] - first[i-1]; d < low {
				t.Fatalf("SYNs %d and %d of the rush %v apart, under the gap's low end %v", i, i+1, d, low)
			}
		}
		if maxSYNs := DefaultRushBurst + int(DefaultRush/low); len(first) > maxSYNs {
			t.Errorf("%d SYNs in the first rush, want at most %d", len(first), maxSYNs)
		}
		perSecond := float64(oe.SYNs) / 2
		t.Logf("first rush: %d SYNs over %v; %d attempts, %d SYNs in 2 s (%.0f/s)", len(first), span, oe.Attempts, oe.SYNs, perSecond)
		if perSecond > 1100 {
			t.Errorf("%.0f SYNs/s on a 50 µs path, want about 1,000 at most", perSecond)
		}
	})
}

// TestPunchRunsUntilItsDeadline: a punch toward a peer that refuses every
// SYN never gives up before its deadline (the old schedule stopped after
// 10 attempts, ~5 s here, while the peer might still come): the check's
// deadline, Schedule.Duration, or DefaultDuration when neither is set.
func TestPunchRunsUntilItsDeadline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Duration // on ctx; 0: none
		duration time.Duration // Schedule.Duration
		want     time.Duration
	}{
		{"ctx deadline", 7 * time.Second, 0, 7 * time.Second},
		{"Duration", 0, 3 * time.Second, 3 * time.Second},
		{"Duration before ctx's deadline", 7 * time.Second, 3 * time.Second, 3 * time.Second},
		{"DefaultDuration", 0, 0, DefaultDuration},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				w := newTwoNATs(20 * time.Millisecond) // a 20 ms path: one SYN per round trip
				start := time.Now()
				_, err := open(ctx, Punch{Local: pLocal, Remote: pRemote, Schedule: Schedule{Duration: tc.duration}}, w.env(0, 1))
				took := time.Since(start)
				var oe *OpenError
				if !errors.As(err, &oe) || !oe.Expired || oe.Canceled || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v", err)
				}
				if took != tc.want {
					t.Errorf("gave up after %v, want %v", took, tc.want)
				}
				last := w.sent[0][len(w.sent[0])-1]
				if gap := tc.want - last; gap > DefaultRush/2+w.rtt {
					t.Errorf("last SYN %v before the deadline, want SYNs until the end", gap)
				}
				if oe.Reason() != "refused" {
					t.Errorf("reason %q, want refused", oe.Reason())
				}
				t.Logf("%d attempts, %d SYNs (%.0f/s on a 20 ms path): %v", oe.Attempts, oe.SYNs, float64(oe.SYNs)/took.Seconds(), err)
			})
		})
	}
}

// lateCtx is a context whose deadline has passed but whose timer has not
// fired yet, as on a host too busy to run it.
type lateCtx struct {
	context.Context
	deadline time.Time
}

func (c lateCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// TestPunchStopsAtItsDeadlineWhoseTimerIsLate: past its deadline every
// connect fails at once (the kernel's deadline is in the past) while ctx
// is not done yet; the punch must stop by the clock instead of spinning a
// SYN per turn (seen in the lab under load: 25 attempts in 0.2 ms).
func TestPunchStopsAtItsDeadlineWhoseTimerIsLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		late := 0 // connects made past the deadline
		e := env{float: func() float64 { return 0.5 }, dial: func(ctx context.Context, local, remote netip.AddrPort, _ int) (*net.TCPConn, error) {
			if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
				if late++; late > 100 {
					return nil, errors.New("spinning")
				}
				return nil, &ConnectError{Local: local, Remote: remote, Err: &net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}}
			}
			time.Sleep(time.Millisecond)
			return nil, &ConnectError{Local: local, Remote: remote, Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
		}}
		ctx := lateCtx{Context: t.Context(), deadline: time.Now().Add(time.Second)}
		_, err := open(ctx, Punch{Local: pLocal, Remote: pRemote}, e)
		var oe *OpenError
		if !errors.As(err, &oe) || !oe.Expired || oe.Canceled || oe.Other > 0 {
			t.Fatalf("err = %v, want the punch to end at its deadline", err)
		}
		if late > 1 {
			t.Errorf("%d connects past the deadline, want at most the one that found it", late)
		}
		if d := time.Since(ctx.deadline); d > time.Millisecond {
			t.Errorf("ended %v after its deadline", d)
		}
	})
}

// TestOpenErrorListsABoundedNumberOfTries: a long punch keeps every count
// but lists MaxTries SYNs and its last one.
func TestOpenErrorListsABoundedNumberOfTries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newTwoNATs(50 * time.Microsecond)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := open(ctx, Punch{Local: pLocal, Remote: pRemote}, w.env(0, 1))
		var oe *OpenError
		if !errors.As(err, &oe) || oe.SYNs <= MaxTries {
			t.Fatalf("err = %v, want more than %d SYNs", err, MaxTries)
		}
		if len(oe.Tries) != MaxTries+1 || oe.Omitted+len(oe.Tries) != oe.SYNs || oe.Refused+oe.TimedOut+oe.Unreachable != oe.SYNs {
			t.Errorf("%d tries listed, %d omitted, %d SYNs, %d refused", len(oe.Tries), oe.Omitted, oe.SYNs, oe.Refused)
		}
		if last := oe.Tries[len(oe.Tries)-1]; last.At != w.sent[0][oe.SYNs-1] || last.Attempt != oe.Attempts {
			t.Errorf("last listed try %+v, want the punch's last SYN (at %v)", last, w.sent[0][oe.SYNs-1])
		}
		want := fmt.Sprintf("%d attempts, %d SYNs (%d refused) [1: ", oe.Attempts, oe.SYNs, oe.Refused)
		if got := err.Error(); !strings.Contains(got, want) || !strings.Contains(got, " | … | ") || !strings.Contains(got, ", deadline passed") {
			t.Errorf("error %q, want %q, the middle attempts left out and the deadline", got, want)
		}
	})
}
