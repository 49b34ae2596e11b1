//go:build lab

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/natlab"
)

// needRoot skips lab tests without root, except under CI=true, where they
// must run.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("the NAT lab needs root and CI=true forbids skipping it")
	}
	t.Skip("the NAT lab needs root (network namespaces, nftables); skipped")
}

// runCells runs the matrix with this test binary as icetcp.
func runCells(t *testing.T, mc natlab.MatrixConfig) *natlab.MatrixResult {
	t.Helper()
	needRoot(t)
	// The processes the lab starts are this binary running main. Under
	// -race each would sleep 1 s at exit (the race runtime's default
	// atexit_sleep_ms): two per trial. Through mc.Env, not t.Setenv, so
	// that tests can run in parallel.
	mc.Env = append(mc.Env, "ICETCP_MAIN=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	mc.Binary = os.Args[0]
	if mc.Trials == 0 {
		mc.Trials = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if mc.LogDir == "" {
		// A failed trial's two stderr streams (events and the agents' info
		// log) end up in the test's output: a flake in CI is then a
		// diagnosis, not a number.
		mc.LogDir = t.TempDir()
		mc.Env = append(mc.Env, "ICETCP_LOG=info")
		defer logFailedTrials(t, mc.LogDir)
	}
	res, err := natlab.RunMatrix(ctx, mc)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		if left, _ := natlab.Leftovers(natlab.BasePrefix); len(left) > 0 {
			t.Errorf("lab left behind: %v", left)
		}
	})
	return res
}

// logFailedTrials logs the tail of each log the matrix kept in dir.
func logFailedTrials(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, name := range logs {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		lines = lines[max(0, len(lines)-80):]
		t.Logf("%s (last %d lines):\n%s", filepath.Base(name), len(lines), strings.Join(lines, "\n"))
	}
}

func cell(t *testing.T, res *natlab.MatrixResult, a, b string) natlab.CellResult {
	t.Helper()
	for _, c := range res.Cells {
		if c.A == a && c.B == b {
			return c
		}
	}
	t.Fatalf("no cell %s×%s", a, b)
	return natlab.CellResult{}
}

// TestLabConnects: every NAT with a predictable mapping connects, over the
// path each combination should take, at 20 ms and 100 ms one-way delay.
func TestLabConnects(t *testing.T) {
	for _, delay := range []time.Duration{20 * time.Millisecond, 100 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			res := runCells(t, natlab.MatrixConfig{
				Delay: delayline.LinkConfig{Delay: delay},
				Cells: []natlab.Cell{
					{A: "preserve-rst", B: "preserve-rst"},
					{A: "preserve-drop", B: "preserve-drop"},
					{A: "eim-remap", B: "preserve-drop"},
					{A: "public", B: "preserve-rst"},
					{A: "preserve-drop", B: "public"},
					{A: "preserve-rst", SameNAT: true},
				},
			})
			contains := func(sub string) func(string) bool {
				return func(p string) bool { return strings.Contains(p, sub) }
			}
			for _, want := range []struct {
				a, b, path string // path describes ok
				ok         func(string) bool
			}{
				{"preserve-rst", "preserve-rst", "so host↔srflx", contains("so host↔srflx")},
				{"preserve-drop", "preserve-drop", "so host↔srflx", contains("so host↔srflx")},
				{"eim-remap", "preserve-drop", "so host↔srflx", contains("so host↔srflx")},
				// A public peer's host candidates are reachable: any direct
				// pair on them (active→passive, or tcp-so, which now starts
				// at once) may win, never the relay.
				{"public", "preserve-rst", "direct, on A's host candidate", publicSide(0)},
				{"preserve-drop", "public", "direct, on B's host candidate", publicSide(1)},
				{"preserve-rst", "same-nat", "host candidates (inside the LAN)", contains(" host")},
			} {
				c := cell(t, res, want.a, want.b)
				if c.Successes != c.Trials {
					t.Errorf("%s×%s: %d/%d connected: %v", want.a, want.b, c.Successes, c.Trials, c.Failures)
					continue
				}
				if !allPaths(c.Paths, want.ok) {
					t.Errorf("%s×%s: paths %v, want %s", want.a, want.b, c.Paths, want.path)
				}
				t.Logf("%s×%s: %s in %.0f ms (%.1f RTTs)", want.a, want.b, c.DominantPath(), c.MedianMs, c.MedianRTTs)
			}
		})
	}
}

// publicSide accepts a direct path whose candidate on side i (0: A, 1: B)
// is a host candidate, e.g. "so host↔srflx" for A or "active→passive
// srflx→host" for B.
func publicSide(i int) func(string) bool {
	return func(p string) bool {
		if natlab.IsRelayPath(p) {
			return false
		}
		_, types, _ := strings.Cut(p, " ")
		f := strings.FieldsFunc(types, func(r rune) bool { return r == '↔' || r == '→' || r == '←' })
		return len(f) == 2 && f[i] == "host"
	}
}

// TestLabFailsWithReason: without a relay, combinations no direct TCP
// path crosses fail within the agent's bounds and say which pairs failed
// how.
func TestLabFailsWithReason(t *testing.T) {
	start := time.Now()
	res := runCells(t, natlab.MatrixConfig{
		Relay:   natlab.RelayOff,
		Delay:   delayline.LinkConfig{Delay: 20 * time.Millisecond},
		Timeout: 60 * time.Second,
		Cells: []natlab.Cell{
			{A: "symmetric", B: "symmetric"},
			{A: "no-simopen", B: "no-simopen"},
		},
	})
	for _, c := range res.Cells {
		if c.Successes != 0 {
			t.Errorf("%s×%s connected %d times; no direct path should exist", c.A, c.B, c.Successes)
		}
		for reason := range c.Failures {
			if !strings.Contains(reason, "pairs failed") || !strings.Contains(reason, "so host→srflx") {
				t.Errorf("%s×%s: reason %q does not say how the S-O pairs failed", c.A, c.B, reason)
			}
		}
	}
	// The agent's own bounds (10 s per check, then 10 s of silence) end a
	// trial well before the runner's 60 s timeout would.
	if el := time.Since(start); el > 100*time.Second {
		t.Errorf("two failing cells took %v", el)
	}
}

// TestLabNoSimopenOneSided records a measured fact: a NAT that drops an
// inbound SYN matching its reply direction kills simultaneous open only
// when both sides have it. Against a NAT that forwards the crossing SYN,
// the far host answers it with SYN-ACK, which the dropping NAT lets pass
// as the answer to its own SYN.
func TestLabNoSimopenOneSided(t *testing.T) {
	res := runCells(t, natlab.MatrixConfig{
		Delay: delayline.LinkConfig{Delay: 20 * time.Millisecond},
		Cells: []natlab.Cell{{A: "no-simopen", B: "preserve-rst"}},
	})
	c := cell(t, res, "no-simopen", "preserve-rst")
	if c.Successes != c.Trials || !strings.HasPrefix(c.DominantPath(), "so ") {
		t.Fatalf("no-simopen×preserve-rst: %d/%d over %q: %v", c.Successes, c.Trials, c.DominantPath(), c.Failures)
	}
}

// TestLab50MiB: two connect processes behind two different NATs carry
// 50 MiB each way, byte-identical (the runner compares what each side
// received with what the other sent).
func TestLab50MiB(t *testing.T) {
	res := runCells(t, natlab.MatrixConfig{
		Delay:       delayline.LinkConfig{Delay: 20 * time.Millisecond},
		PayloadSize: 50 << 20,
		Timeout:     3 * time.Minute,
		Cells:       []natlab.Cell{{A: "eim-remap", B: "preserve-rst"}},
	})
	c := cell(t, res, "eim-remap", "preserve-rst")
	if c.Successes != 1 {
		t.Fatalf("50 MiB through eim-remap×preserve-rst: %v", c.Failures)
	}
}

// punchCells are the NAT pairs whose tcp-so punch must never fail: RST
// and silently dropping NATs, port-preserving or not, and a home NAT
// behind a carrier-grade NAT.
var punchCells = []natlab.Cell{
	{A: "preserve-rst", B: "preserve-rst"},
	{A: "preserve-rst", B: "preserve-drop"},
	{A: "eim-remap", B: "preserve-rst"},
	{A: "nested", B: "preserve-rst"},
}

// TestLabPunch: through two NATs with endpoint-independent mapping the
// agents connect every time and over tcp-so, with no added delay (20
// trials per cell: the synchronisation error is then larger than the path,
// the case that failed 3 times in 6 before tcpso's rush) and at 100 ms one
// way (3 trials). "first attempt" needs the agent to report the winning
// punch's attempts in its selected event. The first attempt is a rush of
// 250 ms; a trial needs a second one only when a side could not run for
// most of it (a busy host), so the share is held to DCUtR's 97.6 % rather
// than to every trial: at most one in 40 over the whole test (the 12
// punches at 100 ms alone cannot tell one in 40 from one in 12). The same
// share holds trials that end on the relay: the RST × silent-NAT port
// clash (README, "Direct paths on a busy host", about 1 in 500 trials of
// that cell) leaves a punch nothing to do but fall back, and issue 13's
// goal is 100 % connected and at least 99 % direct. About 60 s.
func TestLabPunch(t *testing.T) {
	var all punchTally
	for _, tc := range []struct {
		delay  time.Duration
		trials int
	}{{0, 20}, {100 * time.Millisecond, 3}} {
		t.Run(tc.delay.String(), func(t *testing.T) {
			all.add(labPunch(t, natlab.MatrixConfig{Delay: delayline.LinkConfig{Delay: tc.delay}, Trials: tc.trials, Cells: punchCells}))
		})
	}
	all.check(t)
}

// TestLabPunchUnderLoad: the 0 ms RST×RST and RST×drop cells with the
// relay on offer, on a busy host: two busy processes beside the lab for
// the whole run (MatrixConfig.Load, `icetcp lab --load 2`), on top of the
// race detector's own cost. Every trial must connect, over tcp-so but for
// one in 40 at most (as in TestLabPunch): before this test, one punch in
// 80 went to the relay, or failed without one, when the host was busy (a
// rush starved of CPU spent, a back-off past the relay's cap, a punch
// given up after 10 attempts). About 20 s.
func TestLabPunchUnderLoad(t *testing.T) {
	labPunch(t, natlab.MatrixConfig{Trials: 20, Load: 2, Cells: punchCells[:2]}).check(t)
}

// punchTally counts the trials of labPunch: how many connected over a
// tcp-so pair and over something else (the relay), and of the tcp-so
// ones how many reported their attempts and connected on the first.
type punchTally struct {
	so, other, punched, first int
}

func (p *punchTally) add(q punchTally) {
	p.so, p.other, p.punched, p.first = p.so+q.so, p.other+q.other, p.punched+q.punched, p.first+q.first
}

// check holds trials off tcp-so, and punches after the first attempt, to
// one in 40 each.
func (p punchTally) check(t *testing.T) {
	t.Helper()
	t.Logf("%d of %d tcp-so punches connected on the first attempt; %d of %d trials off tcp-so", p.first, p.punched, p.other, p.so+p.other)
	if later := p.punched - p.first; later*40 > p.punched {
		t.Errorf("%d of %d tcp-so punches needed more than the first attempt, want at most one in 40", later, p.punched)
	}
	if p.other*40 > p.so+p.other {
		t.Errorf("%d of %d trials connected off tcp-so, want at most one in 40", p.other, p.so+p.other)
	}
}

// labPunch runs mc's cells (a subset of punchCells) and wants every trial
// connected, each cell mostly over tcp-so; it returns the tally.
func labPunch(t *testing.T, mc natlab.MatrixConfig) punchTally {
	t.Helper()
	mc.MaxFailures = 2 // a broken cell costs two agent timeouts, not twenty
	res := runCells(t, mc)
	var b strings.Builder
	res.Table(&b)
	t.Log("\n" + b.String())
	var n punchTally
	for _, want := range mc.Cells {
		c := cell(t, res, want.A, want.B)
		if c.Successes != mc.Trials || !strings.HasPrefix(c.DominantPath(), "so ") {
			t.Errorf("%s×%s: %d/%d connected over %v: %v", want.A, want.B, c.Successes, mc.Trials, c.Paths, c.Failures)
		}
		so := 0
		for path, k := range c.Paths {
			if strings.HasPrefix(path, "so ") {
				so += k
			}
		}
		if c.Punched < so {
			t.Errorf("%s×%s: %d of %d tcp-so successes report their attempts (the agent's selected event lacks \"attempts\")", want.A, want.B, c.Punched, so)
		}
		n.add(punchTally{so: so, other: c.Successes - so, punched: c.Punched, first: c.FirstAttempt})
	}
	return n
}
