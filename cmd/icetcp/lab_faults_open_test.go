//go:build lab && labfaults

package main

// The session's lab fault test that does not pass yet: the relay still
// carries more than 64 KiB after the direct pair validated in some runs
// (README, "Sessions: relay first, direct at the end, no byte lost"). It
// is out of the suite until that is fixed, and in the tree as its
// reproducer:
//
//	sudo go test -tags 'lab labfaults' -race -run 'TestLabLateDirect$' ./cmd/icetcp

import (
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/natlab"
)

// maxAfterDirect is what a relayed path may carry after a direct pair
// validated (iroh measured 10-35 KB over QUIC multipath).
const maxAfterDirect = 64 << 10

// TestLabLateDirect: the direct path between two port-preserving NATs is
// blocked (a drop rule on A's gateway) for the first 3 s, the relay
// reachable throughout: both sides start on the relay, carry data there,
// and move to the direct path after the rule goes, mid-transfer. Both
// streams arrive byte for byte, both sides exit 0, and the relay carried
// at most 64 KiB after the direct pair validated.
func TestLabLateDirect(t *testing.T) {
	t.Parallel()
	st := stage(t, "preserve-rst", "preserve-rst")
	lift, err := st.BlockPeers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ss := startSession(t, st, natlab.SessionConfig{Size: lateDirectSize, Tail: lateDirectTail, Timeout: lateDirectTimeout})
	for i, e := range await(t, ss, "a selected pair", isEvent("selected")) {
		if e.Path != "relay" {
			t.Fatalf("side %d selected %s with the direct path blocked: %+v", i, e.Path, e)
		}
	}
	// Data flows over the relay, and the peers started 3 s ago.
	await(t, ss, "1 MiB received over the relay, 3 s in", received(1<<20, 3*time.Second))
	liftAt := ss.Elapsed()
	if err := lift(t.Context()); err != nil {
		t.Fatal(err)
	}
	moved := await(t, ss, "the move to the direct path", isPath("direct"))
	for i, e := range moved {
		t.Logf("side %d moved to direct %.1f s after the block was lifted, after %d bytes", i, (e.At - liftAt).Seconds(), e.AtBytes)
	}
	ss.Finish()
	res := finish(t, ss)
	for _, s := range res.Sides {
		if lastPath(s) != "direct" {
			t.Errorf("%s ended on %s, want direct", s.Name, lastPath(s))
		}
		if r := s.First("resumed"); r != nil {
			t.Errorf("%s resumed (%+v): nothing broke, the relay should hand over, not fail", s.Name, *r)
		}
		checkAfterDirect(t, s)
	}
}

// checkAfterDirect wants s's done event to report the bytes per path,
// with at most maxAfterDirect over the relay after a direct pair
// validated.
func checkAfterDirect(t *testing.T, s natlab.SideResult) {
	t.Helper()
	done := s.First("done")
	switch {
	case done == nil:
		t.Errorf("%s: no done event", s.Name)
	case len(done.Paths) == 0:
		t.Errorf("%s: the done event has no paths (bytes per path): %+v", s.Name, *done)
	}
	if done == nil {
		return
	}
	for _, p := range done.Paths {
		if p.Path == "relay" && p.AfterDirect > maxAfterDirect {
			t.Errorf("%s: the relay carried %d bytes after the direct pair validated, want at most %d", s.Name, p.AfterDirect, maxAfterDirect)
		}
	}
}
