package natlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
)

// MatrixConfig configures RunMatrix. Zero values work except Binary.
type MatrixConfig struct {
	// Binary is the path of the icetcp executable.
	Binary string
	// Profiles are both the rows (A) and the columns (B); nil means the
	// whole catalogue.
	Profiles []string
	// Rows, when not nil, are the rows (A) instead of Profiles, which are
	// then the columns only (e.g. the relay profiles against all).
	Rows []string
	// Trials per cell; zero means 1.
	Trials int
	// Delay is each peer link's impairment (A↔B RTT = 2×Delay.Delay).
	Delay delayline.LinkConfig
	// Timeout bounds one trial; zero means 30 s.
	Timeout time.Duration
	// PayloadSize is what each peer sends; zero means 64 KiB.
	PayloadSize int
	// OnResult, if not nil, is called after every trial (progress); an
	// await-direct twin (Counterfactual) is reported inside its trial.
	OnResult func(TrialResult)
	// Cells, when not nil, are the cells to run instead of Rows ×
	// Profiles (e.g. one same-NAT cell); without Profiles, the table's
	// rows and columns are the cells' A and B profiles.
	Cells []Cell
	// ConnectArgs are extra flags for every `icetcp connect`.
	ConnectArgs []string
	// Env is added (KEY=VALUE) to the environment of every icetcp process
	// the matrix starts, serve and connect: what a parallel test cannot
	// set process-wide.
	Env []string
	// LogDir, when set, receives both sides' stderr of every failed trial,
	// and of successful ones slower than LogSlower (when positive), and
	// the servers' output of every cell with a failed trial.
	LogDir    string
	LogSlower time.Duration
	// MaxFailures, when positive, ends a cell after that many failed
	// trials (CI: a broken cell should not spend 20 trials of timeouts).
	MaxFailures int
	// SameSegment builds every lab without the router hop between the
	// gateways (Config.SameSegment).
	SameSegment bool
	// Relay is the TURN relay every connect gets with --turn; zero means
	// RelayEmbedded.
	Relay Relay
	// Counterfactual runs every trial that ended on a relayed path again
	// with --await-direct (the relayed pair nominated only once every
	// direct pair failed): what the fast fallback saves, measured.
	Counterfactual bool
	// CounterfactualTrials, when positive, bounds the twins per cell (an
	// await-direct trial waits out the direct checks: ~10 s each).
	CounterfactualTrials int
	// Proxies are the proxies a ProxyOnly peer goes through, one per
	// trial in turn; nil means ProxySquidAuth.
	Proxies []ProxyKind
	// Room makes both sides join with --room NAME (unauthenticated, the
	// stream in the clear; connect warns) instead of the default --secret
	// (a fresh secret per trial, end-to-end encrypted stream).
	Room bool
	// Load, when positive, runs that many busy processes (StartLoad)
	// beside the lab for the whole matrix: the trials then measure a busy
	// host. They are stopped before RunMatrix returns, also when ctx is
	// canceled (the CLI cancels it on SIGINT/SIGTERM).
	Load int
}

// Cell is one combination of the matrix.
type Cell struct {
	A, B    string
	SameNAT bool // both peers behind A's gateway; B is ignored
}

// RunMatrix builds one lab per (A, B) profile pair, runs `icetcp serve`
// (and coturn, with RelayCoturn) in its server namespace and, per trial,
// `icetcp connect` in A's and B's namespaces, exchanging random payloads.
// It returns what it measured so far together with an error if the lab
// itself failed.
func RunMatrix(ctx context.Context, mc MatrixConfig) (*MatrixResult, error) {
	if mc.Binary == "" {
		return nil, errors.New("natlab: matrix: no icetcp binary given")
	}
	if _, err := ParseRelay(string(mc.Relay)); err != nil {
		return nil, err
	}
	mc.Relay = mc.Relay.orDefault()
	if mc.LogDir != "" {
		// The logs are written as trials end, with nobody to report a
		// failed write to: the directory must exist before the first one.
		if err := os.MkdirAll(mc.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("natlab: matrix: log directory: %w", err)
		}
	}
	if mc.Profiles == nil && mc.Cells != nil {
		rows, cols := cellAxes(mc.Cells)
		mc.Profiles = cols
		if mc.Rows == nil {
			mc.Rows = rows
		}
	}
	if mc.Profiles == nil {
		for _, p := range Profiles() {
			mc.Profiles = append(mc.Profiles, p.Name)
		}
	}
	if mc.Rows == nil {
		mc.Rows = mc.Profiles
	}
	for _, p := range append(slices.Clone(mc.Rows), mc.Profiles...) {
		if _, err := ProfileByName(p); err != nil {
			return nil, err
		}
	}
	mc.Trials = max(mc.Trials, 1)
	if mc.Timeout <= 0 {
		mc.Timeout = 30 * time.Second
	}
	if mc.PayloadSize <= 0 {
		mc.PayloadSize = 64 << 10
	}
	cells := mc.Cells
	if cells == nil {
		for _, a := range mc.Rows {
			for _, b := range mc.Profiles {
				cells = append(cells, Cell{A: a, B: b})
			}
		}
	}
	load, err := StartLoad(mc.Load)
	if err != nil {
		return nil, err
	}
	defer load.Stop()
	res := &MatrixResult{Rows: mc.Rows, Profiles: mc.Profiles, Trials: mc.Trials, Delay: mc.Delay.Delay, Relay: mc.Relay, Load: mc.Load}
	for _, c := range cells {
		cell, err := runCell(ctx, mc, c)
		if err != nil {
			return res, err
		}
		res.Cells = append(res.Cells, cell)
	}
	return res, nil
}

func runCell(ctx context.Context, mc MatrixConfig, c Cell) (CellResult, error) {
	a, b := c.A, c.B
	if c.SameNAT {
		b = "same-nat"
	}
	lab, err := New(ctx, Config{A: c.A, B: c.B, SameNAT: c.SameNAT, Delay: mc.Delay, SameSegment: mc.SameSegment})
	if err != nil {
		return CellResult{}, fmt.Errorf("natlab: matrix cell %s×%s: %w", a, b, err)
	}
	// No CloseOnSignal here: callers cancel ctx on SIGINT/SIGTERM (the CLI
	// does), and this deferred Close then finishes before RunMatrix
	// returns; re-raising the signal would end the process mid-cleanup.
	defer lab.Close()

	srv, err := lab.startServers(ctx, mc)
	if err != nil {
		return CellResult{}, fmt.Errorf("natlab: matrix cell %s×%s: %w", a, b, err)
	}
	defer srv.stop()

	var trials []TrialResult
	failed, twinFailed, twins := 0, false, 0
	defer func() {
		if (failed > 0 || twinFailed) && mc.LogDir != "" {
			path := filepath.Join(mc.LogDir, fmt.Sprintf("%s-%s-%s-server.log", lab.Prefix, a, b))
			_ = os.WriteFile(path, []byte(srv.log()), 0o644)
		}
	}()
	for i := range mc.Trials {
		if mc.MaxFailures > 0 && failed >= mc.MaxFailures {
			break
		}
		if err := ctx.Err(); err != nil {
			return aggregate(a, b, lab.RTT, trials), err
		}
		tr := lab.runTrial(ctx, mc, srv, i, false)
		if mc.wantTwin(tr, twins) && ctx.Err() == nil {
			twins++
			twin := lab.runTrial(ctx, mc, srv, i, true)
			twin.A, twin.B = a, b
			tr.AwaitDirect = &twin
			twinFailed = twinFailed || !twin.OK
		}
		tr.A, tr.B = a, b
		trials = append(trials, tr)
		if !tr.OK {
			failed++
		}
		if mc.OnResult != nil {
			mc.OnResult(tr)
		}
	}
	return aggregate(a, b, lab.RTT, trials), nil
}

// wantTwin reports whether trial tr, after twins twins in its cell, gets
// an await-direct twin.
func (mc MatrixConfig) wantTwin(tr TrialResult, twins int) bool {
	return mc.Counterfactual && tr.OK && IsRelayPath(tr.Path) &&
		(mc.CounterfactualTrials <= 0 || twins < mc.CounterfactualTrials)
}

// cellAxes are the distinct A and B profiles of cells, in order (same-NAT
// cells have no column of their own).
func cellAxes(cells []Cell) (rows, cols []string) {
	for _, c := range cells {
		if !slices.Contains(rows, c.A) {
			rows = append(rows, c.A)
		}
		if !c.SameNAT && !slices.Contains(cols, c.B) {
			cols = append(cols, c.B)
		}
	}
	return rows, cols
}
