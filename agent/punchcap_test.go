package agent

import (
	"context"
	"fmt"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/lab/memnet"
	"github.com/icetcp/icetcp/tcpso"
)

// starvedPunch is the in-memory network, except that a punch's first SYN
// leaves only after starve (its goroutine waits for a CPU on a busy host)
// and the punch then never connects (two NATs that drop crossing SYNs,
// which natcheck cannot tell from a likely pair).
type starvedPunch struct {
	*memnet.Network
	starve time.Duration
}

func (s *starvedPunch) SimultaneousOpen(ctx context.Context, p tcpso.Punch) (net.Conn, int, error) {
	t := time.NewTimer(s.starve) // virtual time: the punching goroutine does not run
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	if p.OnStart != nil {
		p.OnStart(time.Now())
	}
	<-ctx.Done()
	return nil, 0, fmt.Errorf("starved punch: %w", ctx.Err())
}

// TestSyncLikelyPunchWaitCountsFromItsFirstSYN: a likely punch gets its
// second before the relay wins from when its first SYN left, not from when
// its check started. A punch whose first SYN a busy host held back for
// 1.5 s still gets its second (before, the relay won at 1 s: a needless
// relay for a punch that had not started); one that starts at once and
// never connects (two no-simopen NATs) pays what it always paid.
func TestSyncLikelyPunchWaitCountsFromItsFirstSYN(t *testing.T) {
	for _, starve := range []time.Duration{0, 1500 * time.Millisecond} {
		t.Run(starve.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := memnet.New()
				stunOn(t, n, stunAddr)
				r := newMemRelay(n)
				ca, cb := natPair(n, r, false, false)
				ca.Role, cb.Role = RoleControlling, RoleControlled
				// The wait is the policy without sessions; with them the
				// relay goes first (TestSyncSessionRelayFirst).
				ca.Network = &starvedPunch{Network: n, starve: starve}
				x, y := syncPair(t, ca, cb)
				if x.Path() != "relay" || y.Path() != "relay" {
					t.Fatalf("paths %s, %s; want the relay (the punch never connects)", x.Path(), y.Path())
				}
				want := starve + time.Second
				if took := x.ConnectTime(); took < want || took > want+100*time.Millisecond {
					t.Errorf("relay selected after %v, want just after %v (the first SYN at %v, then the likely punch's second)", took, want, starve)
				}
				exchange(t, x, y, 4096)
			})
		})
	}
}

// TestLikelyUntil pins the rule: the wait counts from the first SYN of the
// pair's current check; until the punch reported one (a report of an
// earlier check is stale) it has not begun; never from before the check
// started.
func TestLikelyUntil(t *testing.T) {
	t0 := time.Unix(1000, 0)
	so := candidate.Candidate{Type: candidate.Host, TCPType: candidate.SO}
	srflx := candidate.Candidate{Type: candidate.ServerReflexive, TCPType: candidate.SO}
	cfg := Config{CheckTimeout: 10 * time.Second}
	a := &Agent{cfg: cfg, to: newTimeouts(cfg),
		nat: natState{local: eimClass, remote: eimClass, haveLocal: true, haveRemote: true}}
	q := &pair{local: so, remote: srflx, state: stateInProgress, started: t0, attempt: 2}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	check := func(what string, now, want time.Time) {
		t.Helper()
		got, ok := a.likelyUntil(q, 10*time.Millisecond, now)
		if !ok || !got.Equal(want) {
			t.Errorf("%s: until %v (%v), want %v", what, got.Sub(t0), ok, want.Sub(t0))
		}
	}
	check("no first SYN reported", at(500*time.Millisecond), at(1500*time.Millisecond))
	check("still none", at(3*time.Second), at(4*time.Second))
	a.punch.sending = map[*pair]punchStart{q: {attempt: 1, at: at(2 * time.Second)}}
	check("a report of the pair's previous check", at(3*time.Second), at(4*time.Second))
	a.punch.sending[q] = punchStart{attempt: 2, at: at(1500 * time.Millisecond)}
	check("first SYN 1.5 s late", at(1600*time.Millisecond), at(2500*time.Millisecond))
	a.punch.sending[q] = punchStart{attempt: 2, at: at(-time.Second)}
	check("a first SYN before the check (clock skew)", at(500*time.Millisecond), at(time.Second))
	if got, _ := a.likelyUntil(q, 300*time.Millisecond, at(0)); !got.Equal(at(1800 * time.Millisecond)) {
		t.Errorf("300 ms RTT: until %v, want 1.8s", got.Sub(t0))
	}
	a.nat.remote = symClass
	if _, ok := a.likelyUntil(q, 0, at(0)); ok {
		t.Error("a symmetric peer: the punch is not likely")
	}
}

// A punch the NAT classes cannot judge (no class here) gets its grace
// after a working relay from its first SYN as well: held back for 500 ms
// by a busy host, it is still waited for (the relay used to win 100 ms
// after it validated); one that sends at once pays the grace it always
// paid.
func TestSyncUnjudgedPunchGraceCountsFromItsFirstSYN(t *testing.T) {
	for _, starve := range []time.Duration{0, 500 * time.Millisecond} {
		t.Run(starve.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := memnet.New()
				stunOn(t, n, stunAddr)
				r := newMemRelay(n)
				ca, cb := natPair(n, r, false, false)
				ca.natCheck, cb.natCheck = memConfig(n, ipA, RoleAuto).natCheck, memConfig(n, ipB, RoleAuto).natCheck // no classes
				ca.Role, cb.Role = RoleControlling, RoleControlled
				// The wait is the policy without sessions; with them the
				// relay goes first (TestSyncSessionRelayFirst).
				ca.Network = &starvedPunch{Network: n, starve: starve}
				x, y := syncPair(t, ca, cb)
				if x.Path() != "relay" || y.Path() != "relay" {
					t.Fatalf("paths %s, %s; want the relay (the punch never connects)", x.Path(), y.Path())
				}
				if took := x.ConnectTime(); took < starve+minRelayGrace || took > starve+minRelayGrace+200*time.Millisecond {
					t.Errorf("relay selected after %v, want just after %v (the first SYN at %v, then the grace)", took, starve+minRelayGrace, starve)
				}
				exchange(t, x, y, 4096)
			})
		})
	}
}
