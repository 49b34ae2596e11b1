package natlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/icetcp/icetcp/secure"
)

// side is one `icetcp connect` process of a trial.
type side struct {
	sent     []byte
	stdout   bytes.Buffer
	stderr   stampedBuffer
	err      error
	timedOut bool
}

// runTrial runs `icetcp connect` on both peers, each sending a random
// payload, and judges the outcome. awaitDirect adds --await-direct (the
// counterfactual twin of a relayed trial).
func (l *Lab) runTrial(ctx context.Context, mc MatrixConfig, srv *servers, trial int, awaitDirect bool) TrialResult {
	var join []string // --room, or the secret in the environment
	var room string
	if mc.Room {
		var rb [4]byte
		rand.Read(rb[:])
		room = fmt.Sprintf("r%d-%s", trial, hex.EncodeToString(rb[:]))
		join = []string{"--room", room}
	} else {
		s := secure.NewSecret()
		room = secure.RoomName(s)
		join = []string{"ICETCP_SECRET=" + s.String()}
	}
	tctx, cancel := context.WithTimeout(ctx, mc.Timeout)
	defer cancel()
	start := time.Now()

	var sides [2]side
	var wg sync.WaitGroup
	for i, h := range []Host{l.A, l.B} {
		s := &sides[i]
		s.sent = make([]byte, mc.PayloadSize)
		rand.Read(s.sent)
		srvArgs, env := srv.connectArgs(h)
		// The matrix names each trial's relay itself (--turn, or none):
		// a relay the rendezvous announces is not one of its cells.
		args := append([]string{"connect", "--json", "--no-relay"}, srvArgs...)
		if mc.Room {
			args = append(args, join...)
		} else {
			env = append(env, join...)
		}
		if awaitDirect {
			args = append(args, "--await-direct")
		}
		cmd := l.Command(tctx, h, mc.Binary, append(args, mc.ConnectArgs...)...)
		cmd.Env = append(append(os.Environ(), mc.Env...), env...)
		cmd.Stdin = bytes.NewReader(s.sent)
		s.stderr.start = start
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
	tr.ElapsedMs = float64(time.Since(start).Milliseconds())
	slow := mc.LogSlower > 0 && tr.ConnectMs > float64(mc.LogSlower.Milliseconds())
	if (!tr.OK || slow) && mc.LogDir != "" {
		twin := ""
		if awaitDirect {
			twin = "-await"
		}
		for i, name := range []string{"A", "B"} {
			path := filepath.Join(mc.LogDir, fmt.Sprintf("%s-%s-%d%s.log", logName(room), name, trial, twin))
			_ = os.WriteFile(path, sides[i].stderr.Bytes(), 0o644)
		}
	}
	return tr
}

// logName keeps a room name usable as a file name (secret-derived room
// names are base32, but be safe).
func logName(room string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, room)
}

// evaluateTrial decides a trial from both sides' outputs.
func evaluateTrial(s [2]side) TrialResult {
	var tr TrialResult
	var sel, last [2]*Event // the first selected pair, and where the session ended
	var handshake [2]float64
	var afterDirect [2]int64 // what the relay carried after a direct pair validated; -1: not told
	names := [2]string{"A", "B"}
	for i := range s {
		afterDirect[i] = -1
		for _, e := range stampedEvents(s[i].stderr.Bytes(), s[i].stderr.at) {
			switch e.Event {
			case "selected":
				if sel[i] == nil {
					sel[i], last[i] = &e, &e
				}
			case "secured":
				handshake[i] = e.HandshakeMs
			case "path":
				if sel[i] != nil {
					last[i] = &e
				}
			case "done":
				for _, p := range e.Paths {
					if p.Path == "relay" {
						afterDirect[i] = max(afterDirect[i], 0) + p.AfterDirect
					}
				}
			case "failed":
				if tr.Reason == "" {
					tr.Reason = names[i] + " failed: " + shorten(e.Reason)
				}
			}
		}
	}
	if sel[0] != nil {
		tr.Path = ClassifyPath(last[0].Local, last[0].Remote)
		if last[0] != sel[0] {
			tr.FirstPath = ClassifyPath(sel[0].Local, sel[0].Remote)
		}
	}
	tr.NATA, tr.NATB = natClasses(sel)
	if sel[0] != nil && tr.FirstPath != "" && IsRelayPath(tr.FirstPath) && !IsRelayPath(tr.Path) {
		tr.MoveMs = float64((last[0].At - sel[0].At).Milliseconds())
		tr.AfterDirect = max(afterDirect[0], afterDirect[1])
	}
	for i := range s {
		if sel[i] != nil {
			tr.FirstByteMs = max(tr.FirstByteMs, sel[i].ConnectMs+handshake[i])
			tr.ConnectMs = max(tr.ConnectMs, sel[i].ConnectMs)
			if strings.HasPrefix(tr.Path, "so ") {
				tr.Attempts = max(tr.Attempts, last[i].Attempts)
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

// natClasses are A's and B's NAT classes as measured by each side, or as
// the other side heard them.
func natClasses(sel [2]*Event) (a, b string) {
	if sel[0] != nil {
		a, b = sel[0].NATLocal, sel[0].NATRemote
	}
	if sel[1] != nil {
		if sel[1].NATLocal != "" {
			b = sel[1].NATLocal
		}
		if a == "" {
			a = sel[1].NATRemote
		}
	}
	return a, b
}

// shorten keeps failure reasons countable: one line, bounded length.
func shorten(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// stampedBuffer keeps a process's stderr with the arrival time of each
// line (from start): when a session moved, not only that it did.
type stampedBuffer struct {
	bytes.Buffer
	start time.Time
	at    []time.Duration // at[i]: when line i was complete
}

func (b *stampedBuffer) Write(p []byte) (int, error) {
	now := time.Since(b.start)
	for range bytes.Count(p, []byte{'\n'}) {
		b.at = append(b.at, now)
	}
	return b.Buffer.Write(p)
}
