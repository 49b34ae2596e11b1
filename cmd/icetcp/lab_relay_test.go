//go:build lab

package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/coturn"
	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/natlab"
)

// relayCells have no direct TCP path (symmetric mappings; two NATs that
// drop crossing SYNs; a firewall that lets out TCP 443 only): every trial
// must end on a relayed pair.
var relayCells = []natlab.Cell{
	{A: "symmetric", B: "symmetric"},
	{A: "no-simopen", B: "no-simopen"},
	{A: "tcp443-only", B: "preserve-drop"},
}

// directCells have a direct path, which the relay must not take over.
var directCells = []natlab.Cell{
	{A: "preserve-rst", B: "preserve-rst"},
	{A: "eim-remap", B: "preserve-drop"},
}

// labRelays are the relays every relay test runs against.
var labRelays = []natlab.Relay{natlab.RelayEmbedded, natlab.RelayCoturn}

// needRelay skips a coturn test without turnserver, except under CI=true.
func needRelay(t *testing.T, r natlab.Relay) {
	t.Helper()
	if r != natlab.RelayCoturn || coturn.Installed() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("coturn is not installed and CI=true forbids skipping (apt-get install coturn)")
	}
	t.Skip("coturn not installed (apt-get install coturn); skipped")
}

// TestLabRelay: through each relay, at 20 ms and 100 ms one way, the cells
// without a direct path connect over the relay and exchange their
// payloads intact; the cells with one stay direct although a relay is on
// offer. At 20 ms every relayed trial runs again with --await-direct, and
// the fast fallback must have connected sooner than its twin, which waited
// for the direct checks to fail (the comparison is relative: both are
// measured on the same lab). About 75 s per relay, 30 s of it the three
// await-direct twins (each waits out the 10 s check timeout); the relays
// run in parallel.
func TestLabRelay(t *testing.T) {
	for _, relay := range labRelays {
		t.Run(string(relay), func(t *testing.T) {
			t.Parallel() // separate labs; the assertions compare within one
			needRelay(t, relay)
			for _, delay := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond} {
				t.Run(delay.String(), func(t *testing.T) {
					counterfactual := delay == 20*time.Millisecond
					res := runCells(t, natlab.MatrixConfig{
						Relay: relay, Delay: delayline.LinkConfig{Delay: delay},
						Cells:          append(append([]natlab.Cell(nil), relayCells...), directCells...),
						Counterfactual: counterfactual, MaxFailures: 1,
					})
					logTable(t, res)
					for _, want := range relayCells {
						c := cell(t, res, want.A, want.B)
						if c.Successes != c.Trials || !allPaths(c.Paths, natlab.IsRelayPath) {
							t.Errorf("%s×%s: %d/%d connected over %v, want all relayed: %v", want.A, want.B, c.Successes, c.Trials, c.Paths, c.Failures)
						}
					}
					for _, want := range directCells {
						c := cell(t, res, want.A, want.B)
						direct := func(p string) bool { return !natlab.IsRelayPath(p) }
						if c.Successes != c.Trials || !allPaths(c.Paths, direct) {
							t.Errorf("%s×%s: %d/%d connected over %v, want all direct: %v", want.A, want.B, c.Successes, c.Trials, c.Paths, c.Failures)
						}
					}
					if counterfactual {
						t.Run("fast fallback beats await-direct", func(t *testing.T) {
							for _, want := range relayCells {
								checkCounterfactual(t, cell(t, res, want.A, want.B))
							}
						})
					}
				})
			}
		})
	}
}

// checkCounterfactual: every relayed trial has an await-direct twin that
// also connected over the relay, later than the trial itself.
func checkCounterfactual(t *testing.T, c natlab.CellResult) {
	t.Helper()
	aw := c.AwaitDirect
	switch {
	case c.Successes == 0:
		// Reported above; nothing to compare.
	case aw == nil:
		t.Errorf("%s×%s: no await-direct twin ran", c.A, c.B)
	case aw.Successes != aw.Trials || !allPaths(aw.Paths, natlab.IsRelayPath):
		t.Errorf("%s×%s: await-direct twins %d/%d over %v: %v", c.A, c.B, aw.Successes, aw.Trials, aw.Paths, aw.Failures)
	case aw.Pairs != c.Successes || aw.Faster != aw.Pairs:
		t.Errorf("%s×%s: the fast fallback connected sooner in %d of %d pairs (%.0f ms against %.0f ms median)",
			c.A, c.B, aw.Faster, aw.Pairs, c.MedianMs, aw.MedianMs)
	default:
		t.Logf("%s×%s: relayed in %.0f ms (%.1f RTTs); had it waited for the direct checks: %.0f ms (%.1f RTTs)",
			c.A, c.B, c.MedianMs, c.MedianRTTs, aw.MedianMs, aw.MedianRTTs)
	}
}

// TestLabRelay50MiB: through each relay, two connect processes behind
// symmetric NATs carry 50 MiB each way, byte-identical (the runner compares
// what each side received with what the other sent), at 20 ms one way:
// 13 s through the embedded relay, 24 s through coturn (race-detector
// builds, 2 cores).
func TestLabRelay50MiB(t *testing.T) {
	for _, relay := range labRelays {
		t.Run(string(relay), func(t *testing.T) {
			t.Parallel()
			needRelay(t, relay)
			res := runCells(t, natlab.MatrixConfig{
				Relay: relay, Delay: delayline.LinkConfig{Delay: 20 * time.Millisecond},
				PayloadSize: 50 << 20, Timeout: 3 * time.Minute,
				Cells: []natlab.Cell{{A: "symmetric", B: "symmetric"}},
			})
			c := cell(t, res, "symmetric", "symmetric")
			if c.Successes != 1 || !allPaths(c.Paths, natlab.IsRelayPath) {
				t.Fatalf("50 MiB each way through %s: %d/%d over %v: %v", relay, c.Successes, c.Trials, c.Paths, c.Failures)
			}
			tr := c.Results[0]
			t.Logf("50 MiB each way through %s in %.1f s (connect %.0f ms, %.1f MB/s each way)",
				relay, tr.ElapsedMs/1000, tr.ConnectMs, float64(50<<20)/tr.ElapsedMs/1000)
		})
	}
}

// allPaths reports whether every winning path satisfies ok.
func allPaths(paths map[string]int, ok func(string) bool) bool {
	for p := range paths {
		if !ok(p) {
			return false
		}
	}
	return true
}

func logTable(t *testing.T, res *natlab.MatrixResult) {
	t.Helper()
	var b strings.Builder
	res.Table(&b)
	t.Log("\n" + b.String())
}

// TestLabRoom: the unauthenticated --room mode still connects and carries
// both payloads (connect warns about it; the default is --secret).
func TestLabRoom(t *testing.T) {
	res := runCells(t, natlab.MatrixConfig{
		Room: true, Delay: delayline.LinkConfig{Delay: 20 * time.Millisecond},
		Cells: []natlab.Cell{{A: "preserve-rst", B: "symmetric"}},
	})
	c := cell(t, res, "preserve-rst", "symmetric")
	if c.Successes != 1 {
		t.Fatalf("--room: %v", c.Failures)
	}
	t.Logf("--room: %s in %.0f ms", c.DominantPath(), c.MedianMs)
}

// TestLabFlags: bad lab flags are usage errors that name the problem,
// before anything is built (no root needed).
func TestLabFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lab", "--relay", "pion"}, `unknown relay "pion"`},
		{[]string{"lab", "--delay", "5"}, "--delay"},
		{[]string{"lab", "--load", "-1"}, "--load -1"},
	} {
		var stdout, stderr strings.Builder
		if code := run(tc.args, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}
