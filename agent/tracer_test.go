package agent

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/internal/lab/memnet"
)

// recorder keeps the kinds an agent traced, in order.
type recorder struct {
	mu    sync.Mutex
	kinds []TraceKind
	evs   []TraceEvent
}

func (r *recorder) Trace(e TraceEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kinds = append(r.kinds, e.Kind)
	r.evs = append(r.evs, e)
}

// hasInOrder reports whether want appears in got as a subsequence.
func hasInOrder(got, want []TraceKind) bool {
	i := 0
	for _, k := range got {
		if i < len(want) && k == want[i] {
			i++
		}
	}
	return i == len(want)
}

// The tracer sees a connect step by step, on both sides: the controlling
// agent checks, nominates with its check and selects on the answer; the
// controlled one answers the nominating check, commits and selects.
func TestSyncTraceOfAConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		var ctl, ctd recorder
		ca, cb := activeOnly(memConfig(n, ipA, RoleControlling)), passiveOnly(memConfig(n, ipB, RoleControlled))
		ca.Tracer, cb.Tracer = &ctl, &ctd
		x, y := syncPair(t, ca, cb)
		exchange(t, x, y, 1024)
		want := map[*recorder][]TraceKind{
			&ctl: {TraceState, TraceLocal, TraceState, TraceRemote, TraceCheckStarted, TraceNominated, TraceCheckSucceeded, TraceSelected},
			&ctd: {TraceState, TraceLocal, TraceCheckAnswered, TraceNominated, TraceSelected},
		}
		for r, w := range want {
			r.mu.Lock()
			if !hasInOrder(r.kinds, w) {
				t.Errorf("traced %v, want %v in that order", r.kinds, w)
			}
			sel := slices.IndexFunc(r.evs, func(e TraceEvent) bool { return e.Kind == TraceSelected })
			if sel < 0 || r.evs[sel].Pair == nil || !r.evs[sel].Pair.Selected {
				t.Errorf("the selection's trace carries no selected pair: %+v", r.evs)
			}
			r.mu.Unlock()
		}
	})
}

// A tracer costs nothing when it is not there: an agent without one runs
// the same connect (the nil-safe tracer is all the agent calls).
func TestNilTracer(t *testing.T) {
	var tr tracer
	if tr.on() {
		t.Fatal("a nil tracer is on")
	}
	tr.trace(TraceEvent{Kind: TraceState})
	tr.pair(TraceCheckStarted, &pair{}, time.Time{}, nil)
	if TraceConsentExpired.String() != "consent-expired" || TraceKind(99).String() != "TraceKind(99)" {
		t.Fatal("kind names")
	}
}
