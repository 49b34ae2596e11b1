//go:build lab && labfaults

package main

// The session's lab fault tests that do not pass yet: each found a defect
// of the session layer through real NATs that is still open (README,
// "Sessions: relay first, direct at the end, no byte lost"). They are out
// of the suite until it is fixed, and in the tree as its reproducers:
//
//	sudo go test -tags 'lab labfaults' -race -run 'TestLab(LateDirect|NATRestart|RelayKilled)$' ./cmd/icetcp

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

// TestLabNATRestart: A's NAT restarts mid-transfer on a direct session:
// its connection tracking is flushed and it maps every port anew, so
// every connection through it dies (the rendezvous's, the relay's and the
// peers'), while the server and a direct path stay reachable. The session
// resumes (another pair, or an ICE restart over the rendezvous) and both
// streams arrive intact.
func TestLabNATRestart(t *testing.T) {
	t.Parallel()
	st := stage(t, "preserve-rst", "preserve-rst")
	ss := startSession(t, st, natlab.SessionConfig{Size: faultSize, Tail: faultTail, Args: faultArgs, Timeout: faultTimeout})
	await(t, ss, "a selected pair", isEvent("selected"))
	await(t, ss, "1 MiB received", received(1<<20, 0))
	if err := st.RestartNAT(t.Context(), st.GatewayA); err != nil {
		t.Fatal(err)
	}
	at := ss.Elapsed()
	resumed := await(t, ss, "the session resumed", isEvent("resumed"))
	for i, e := range resumed {
		t.Logf("side %d resumed over %s %.1f s after the NAT restart, after %d bytes", i, e.Path, (e.At - at).Seconds(), e.AtBytes)
	}
	ss.Finish()
	finish(t, ss)
}

// TestLabRelayKilled: a session on the relay (the direct path blocked at
// first) loses its relay mid-transfer, the process killed, just as the
// direct path opens: it goes on over the direct path, both streams
// intact.
func TestLabRelayKilled(t *testing.T) {
	t.Parallel()
	st := stage(t, "preserve-rst", "preserve-rst")
	lift, err := st.BlockPeers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ss := startSession(t, st, natlab.SessionConfig{Size: faultSize, Tail: faultTail, Args: faultArgs, Timeout: faultTimeout})
	for i, e := range await(t, ss, "a selected pair", isEvent("selected")) {
		if e.Path != "relay" {
			t.Fatalf("side %d selected %s with the direct path blocked: %+v", i, e.Path, e)
		}
	}
	await(t, ss, "1 MiB received over the relay", received(1<<20, 0))
	if err := lift(t.Context()); err != nil {
		t.Fatal(err)
	}
	st.KillRelay()
	at := ss.Elapsed()
	for i, e := range await(t, ss, "the move to the direct path", isPath("direct")) {
		t.Logf("side %d on the direct path %.1f s after the relay was killed, after %d bytes", i, (e.At - at).Seconds(), e.AtBytes)
	}
	ss.Finish()
	res := finish(t, ss)
	for _, s := range res.Sides {
		if lastPath(s) != "direct" {
			t.Errorf("%s ended on %s, want direct", s.Name, lastPath(s))
		}
	}
}
