package natlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/icetcp/icetcp/internal/delayline"
)

// MatrixConfig configures RunMatrix. Zero values work except Binary.
type MatrixConfig struct {
	// Binary is the path of the icetcp executable.
	Binary string
	// Profiles are both the rows (A) and the columns (B); nil means the
	// whole catalogue.
	Profiles []string
	// Trials per cell; zero means 1.
	Trials int
	// Delay is each peer link's impairment (A↔B RTT = 2×Delay.Delay).
	Delay delayline.LinkConfig
	// Timeout bounds one trial; zero means 30 s.
	Timeout time.Duration
	// PayloadSize is what each peer sends; zero means 64 KiB.
	PayloadSize int
	// OnResult, if not nil, is called after every trial (progress).
	OnResult func(TrialResult)
	// Cells, when not nil, are the cells to run instead of Profiles ×
	// Profiles (e.g. one same-NAT cell).
	Cells []Cell
	// ConnectArgs are extra flags for every `icetcp connect`.
	ConnectArgs []string
	// LogDir, when set, receives both sides' stderr of every failed trial,
	// and of successful ones slower than LogSlower (when positive).
	LogDir    string
	LogSlower time.Duration
	// MaxFailures, when positive, ends a cell after that many failed
	// trials (CI: a broken cell should not spend 20 trials of timeouts).
	MaxFailures int
	// SameSegment builds every lab without the router hop between the
	// gateways (Config.SameSegment).
	SameSegment bool
}

// Cell is one combination of the matrix.
type Cell struct {
	A, B    string
	SameNAT bool // both peers behind A's gateway; B is ignored
}

// RunMatrix builds one lab per (A, B) profile pair, runs `icetcp serve` in
// its server namespace and, per trial, `icetcp connect` in A's and B's
// namespaces with a fresh room, exchanging random payloads. It returns what
// it measured so far together with an error if the lab itself failed.
func RunMatrix(ctx context.Context, mc MatrixConfig) (*MatrixResult, error) {
	if mc.Binary == "" {
		return nil, errors.New("natlab: matrix: no icetcp binary given")
	}
	if mc.Profiles == nil {
		for _, p := range Profiles() {
			mc.Profiles = append(mc.Profiles, p.Name)
		}
	}
	for _, p := range mc.Profiles {
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
		for _, a := range mc.Profiles {
			for _, b := range mc.Profiles {
				cells = append(cells, Cell{A: a, B: b})
			}
		}
	}
	res := &MatrixResult{Profiles: mc.Profiles, Trials: mc.Trials, Delay: mc.Delay.Delay}
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

	serve, err := lab.startServe(ctx, mc.Binary)
	if err != nil {
		return CellResult{}, fmt.Errorf("natlab: matrix cell %s×%s: %w", a, b, err)
	}
	defer serve.stop()

	var trials []TrialResult
	failed := 0
	for i := range mc.Trials {
		if mc.MaxFailures > 0 && failed >= mc.MaxFailures {
			break
		}
		if err := ctx.Err(); err != nil {
			return aggregate(a, b, lab.RTT, trials), err
		}
		tr := lab.runTrial(ctx, mc, i)
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

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a background process of the lab.
type proc struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{} // closed when Wait returned
}

func (p *proc) stop() {
	killGroup(p.cmd)
	<-p.exited
}

// startServe starts the rendezvous+STUN server and waits until both ports
// accept connections.
func (l *Lab) startServe(ctx context.Context, bin string) (*proc, error) {
	sig := netip.AddrPortFrom(ServerAddr, 8080)
	stun := netip.AddrPortFrom(ServerAddr, 3478)
	cmd := l.Command(ctx, l.Server, bin, "serve", "--signal-addr", sig.String(), "--stun-addr", stun.String())
	p := &proc{cmd: cmd, out: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for _, ap := range []netip.AddrPort{sig, stun} {
		for !l.accepts(ctx, ap) {
			select {
			case <-p.exited:
				return nil, fmt.Errorf("%s serve exited before listening on %s: %s", bin, ap, p.out.String())
			case <-ctx.Done():
				p.stop()
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				p.stop()
				return nil, fmt.Errorf("%s serve: %s not accepting after 15s: %s", bin, ap, p.out.String())
			}
		}
	}
	return p, nil
}

func (l *Lab) accepts(ctx context.Context, ap netip.AddrPort) bool {
	r, _ := l.ProbeTCP(ctx, l.Server, ap, time.Second)
	return r == Connected
}

// side is one `icetcp connect` process of a trial.
type side struct {
	sent     []byte
	stdout   bytes.Buffer
	stderr   bytes.Buffer
	err      error
	timedOut bool
}

func (l *Lab) runTrial(ctx context.Context, mc MatrixConfig, trial int) TrialResult {
	var rb [4]byte
	rand.Read(rb[:])
	room := fmt.Sprintf("r%d-%s", trial, hex.EncodeToString(rb[:]))
	tctx, cancel := context.WithTimeout(ctx, mc.Timeout)
	defer cancel()

	var sides [2]side
	var wg sync.WaitGroup
	for i, h := range []Host{l.A, l.B} {
		s := &sides[i]
		s.sent = make([]byte, mc.PayloadSize)
		rand.Read(s.sent)
		sig, stun := "ws://"+netip.AddrPortFrom(ServerAddr, 8080).String(), netip.AddrPortFrom(ServerAddr, 3478).String()
		if p, _ := ProfileByName(h.Profile); p.TCP443Only {
			sig, stun = "ws://"+netip.AddrPortFrom(Signal443, 443).String(), netip.AddrPortFrom(STUN443, 443).String()
		}
		args := append([]string{"connect", "--signal", sig, "--room", room, "--stun", stun, "--json"}, mc.ConnectArgs...)
		cmd := l.Command(tctx, h, mc.Binary, args...)
		cmd.Stdin = bytes.NewReader(s.sent)
		cmd.Stdout, cmd.Stderr = &s.stdout, &s.stderr
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.err = cmd.Run()
			s.timedOut = tctx.Err() != nil
		}()
	}
	wg.Wait()
	tr := evaluateTrial(sides)
	tr.Trial, tr.Room = trial, room
	slow := mc.LogSlower > 0 && tr.ConnectMs > float64(mc.LogSlower)/float64(time.Millisecond)
	if (!tr.OK || slow) && mc.LogDir != "" {
		for i, name := range []string{"A", "B"} {
			path := filepath.Join(mc.LogDir, fmt.Sprintf("%s-%s-%d.log", room, name, trial))
			_ = os.WriteFile(path, []byte(sides[i].stderr.String()), 0o644)
		}
	}
	return tr
}

// evaluateTrial decides a trial from both sides' outputs.
func evaluateTrial(s [2]side) TrialResult {
	var tr TrialResult
	var sel [2]*Event
	names := [2]string{"A", "B"}
	for i := range s {
		for _, e := range ParseEvents(s[i].stderr.Bytes()) {
			switch e.Event {
			case "selected":
				if sel[i] == nil {
					sel[i] = &e
				}
			case "failed":
				if tr.Reason == "" {
					tr.Reason = names[i] + " failed: " + shorten(e.Reason)
				}
			}
		}
	}
	if sel[0] != nil {
		tr.Path = ClassifyPath(sel[0].Local, sel[0].Remote)
	}
	for i := range s {
		if sel[i] != nil {
			tr.ConnectMs = max(tr.ConnectMs, sel[i].ConnectMs)
			if strings.HasPrefix(tr.Path, "so ") {
				tr.Attempts = max(tr.Attempts, sel[i].Attempts)
			}
		}
	}
	switch {
	case tr.Reason != "":
	case s[0].timedOut || s[1].timedOut:
		tr.Reason = "timeout"
	case sel[0] == nil || sel[1] == nil:
		i := 0
		if sel[0] != nil {
			i = 1
		}
		tr.Reason = "no selected event from " + names[i]
		if s[i].err != nil {
			tr.Reason += " (" + shorten(s[i].err.Error()) + ")"
		}
	case s[0].err != nil || s[1].err != nil:
		i := 0
		if s[0].err == nil {
			i = 1
		}
		tr.Reason = names[i] + ": " + shorten(s[i].err.Error())
	case !bytes.Equal(s[0].stdout.Bytes(), s[1].sent):
		tr.Reason = "payload B→A corrupted or short"
	case !bytes.Equal(s[1].stdout.Bytes(), s[0].sent):
		tr.Reason = "payload A→B corrupted or short"
	default:
		tr.OK = true
	}
	return tr
}

// shorten keeps failure reasons countable: one line, bounded length.
func shorten(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}
