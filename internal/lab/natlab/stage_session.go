package natlab

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/icetcp/icetcp/secure"
)

// SessionConfig configures Stage.Session.
type SessionConfig struct {
	// Size is the least each peer sends. A peer's stream runs on past it
	// until Session.Finish: whatever a test does to the lab before it
	// calls Finish happens while both streams are still being written,
	// however fast the path.
	Size int64
	// Tail is what each stream still carries after Finish, at least: the
	// path a test's fault left the session on carries that much.
	Tail int64
	// Args are extra flags for both connects.
	Args []string
	// Timeout bounds the session; zero means 3 minutes.
	Timeout time.Duration
}

// Session is `icetcp connect --json --secret` running on both peers of a
// Stage, each sending a pseudo-random stream (ChaCha8 with a fresh seed)
// and checking what it receives against the other's, as it arrives:
// nothing is held in memory, so a session may carry gigabytes.
type Session struct {
	sides  [2]*sessionSide
	finish chan struct{}
	once   sync.Once
	cancel context.CancelFunc
	start  time.Time
}

// sessionSide is one connect process of a Session.
type sessionSide struct {
	name    string
	seed    [32]byte
	exited  chan struct{} // closed once the process was waited for
	exitErr error         // set before exited is closed
	timeout bool

	mu      sync.Mutex
	events  []Event
	stderr  bytes.Buffer
	changed chan struct{} // closed and replaced on every new event
	sent    int64         // written to its stdin
	sendErr error
	recv    int64 // read from its stdout
	corrupt int64 // first offset that differs from the peer's stream; -1: none
}

// Session starts connect on A and B with a fresh secret and streams.
func (s *Stage) Session(ctx context.Context, sc SessionConfig) (*Session, error) {
	if sc.Size <= 0 {
		return nil, errors.New("natlab: session: Size must be positive")
	}
	if sc.Timeout <= 0 {
		sc.Timeout = 3 * time.Minute
	}
	tctx, cancel := context.WithTimeout(ctx, sc.Timeout)
	ss := &Session{finish: make(chan struct{}), cancel: cancel, start: time.Now()}
	secret := secure.NewSecret()
	srvArgs, env := s.connectArgs()
	for i, h := range []Host{s.A, s.B} {
		side := &sessionSide{name: h.Name, exited: make(chan struct{}), changed: make(chan struct{}), corrupt: -1}
		crand.Read(side.seed[:])
		ss.sides[i] = side
	}
	var started []*exec.Cmd
	for i, h := range []Host{s.A, s.B} {
		args := append(append([]string{"connect", "--json", "--session"}, srvArgs...), sc.Args...)
		cmd := s.Command(tctx, h, s.bin, args...)
		cmd.Env = append(append(append(os.Environ(), s.env...), env...), "ICETCP_SECRET="+secret.String())
		err := ss.run(tctx, cmd, ss.sides[i], ss.sides[1-i], sc.Size, sc.Tail)
		if err != nil {
			cancel()
			for j := range started {
				<-ss.sides[j].exited
			}
			return nil, fmt.Errorf("natlab: session: %w", err)
		}
		started = append(started, cmd)
	}
	return ss, nil
}

// run starts cmd for side me, feeding it me's stream and checking its
// output against peer's.
func (ss *Session) run(ctx context.Context, cmd *exec.Cmd, me, peer *sessionSide, size, tail int64) error {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	go ss.produce(ctx, stdin, me, size, tail)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); me.check(stdout, peer.seed) }()
	go func() { defer readers.Done(); ss.readEvents(stderr, me) }()
	go func() {
		readers.Wait() // Wait closes the pipes: read them to their end first
		err := cmd.Wait()
		me.mu.Lock()
		me.exitErr, me.timeout = err, ctx.Err() != nil
		me.mu.Unlock()
		close(me.exited)
	}()
	return nil
}

// chunk is what the producer writes at a time.
const chunk = 64 << 10

// produce writes side's stream to w until it has written size bytes and
// Finish was called, and tail more since, then closes w (connect
// half-closes the session).
func (ss *Session) produce(ctx context.Context, w io.WriteCloser, side *sessionSide, size, tail int64) {
	defer w.Close()
	g := rand.NewChaCha8(side.seed)
	buf := make([]byte, chunk)
	var n int64
	end := int64(-1) // where the stream ends, once Finish was called
	for {
		if end < 0 {
			select {
			case <-ss.finish:
				end = max(size, n+tail)
			default:
			}
		}
		if end >= 0 && n >= end {
			return
		}
		if ctx.Err() != nil {
			return
		}
		g.Read(buf)
		m, err := w.Write(buf)
		n += int64(m)
		side.mu.Lock()
		side.sent = n
		if err != nil {
			side.sendErr = err
		}
		side.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// check reads what side's connect received and compares it with the
// peer's stream.
func (side *sessionSide) check(r io.Reader, peerSeed [32]byte) {
	g := rand.NewChaCha8(peerSeed)
	buf, want := make([]byte, chunk), make([]byte, chunk)
	var n int64
	for {
		m, err := r.Read(buf)
		if m > 0 {
			g.Read(want[:m])
			side.mu.Lock()
			if side.corrupt < 0 && !bytes.Equal(buf[:m], want[:m]) {
				i := 0
				for buf[i] == want[i] {
					i++
				}
				side.corrupt = n + int64(i)
			}
			n += int64(m)
			side.recv = n
			side.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// readEvents keeps side's stderr and parses its JSON events as they come.
func (ss *Session) readEvents(r io.Reader, side *sessionSide) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		at := time.Since(ss.start)
		side.mu.Lock()
		side.stderr.Write(line)
		side.stderr.WriteByte('\n')
		if evs := ParseEvents(line); len(evs) == 1 {
			e := evs[0]
			e.At = at
			side.events = append(side.events, e)
			close(side.changed)
			side.changed = make(chan struct{})
		}
		side.mu.Unlock()
	}
	io.Copy(io.Discard, r) // a line over the limit: keep the process unblocked
}

// Await waits until peer i (0: A, 1: B) printed an event ok accepts and
// returns the first such event; it fails when that peer exits first or
// ctx ends.
func (ss *Session) Await(ctx context.Context, i int, what string, ok func(Event) bool) (Event, error) {
	side := ss.sides[i]
	seen := 0
	for {
		side.mu.Lock()
		evs, changed := side.events[seen:], side.changed
		seen = len(side.events)
		side.mu.Unlock()
		for _, e := range evs {
			if ok(e) {
				return e, nil
			}
		}
		select {
		case <-changed:
		case <-side.exited:
			side.mu.Lock()
			defer side.mu.Unlock()
			for _, e := range side.events[seen:] {
				if ok(e) {
					return e, nil
				}
			}
			return Event{}, fmt.Errorf("natlab: %s exited (%v) before %s", side.name, side.exitErr, what)
		case <-ctx.Done():
			side.mu.Lock()
			defer side.mu.Unlock()
			return Event{}, fmt.Errorf("natlab: %s: no %s: %w", side.name, what, ctx.Err())
		}
	}
}

// Finish lets both streams end once they reached the configured Size.
func (ss *Session) Finish() { ss.once.Do(func() { close(ss.finish) }) }

// Elapsed is the time since the session started.
func (ss *Session) Elapsed() time.Duration { return time.Since(ss.start) }

// Wait finishes the streams, waits for both connects to exit (the
// session's Timeout kills them) and returns what happened.
func (ss *Session) Wait() *SessionResult {
	ss.Finish()
	res := &SessionResult{}
	for i, side := range ss.sides {
		<-side.exited
		side.mu.Lock()
		res.Sides[i] = SideResult{
			Name: side.name, Events: side.events, Stderr: side.stderr.String(), Err: side.exitErr,
			TimedOut: side.timeout, Sent: side.sent, SendErr: side.sendErr, Received: side.recv, Corrupt: side.corrupt,
		}
		side.mu.Unlock()
	}
	res.Elapsed = time.Since(ss.start)
	ss.cancel()
	return res
}

// SessionResult is how a Session ended.
type SessionResult struct {
	Sides   [2]SideResult // A, B
	Elapsed time.Duration
}

// SideResult is one peer's connect, as it ended.
type SideResult struct {
	Name     string
	Events   []Event // its JSON events, each with its arrival time (At)
	Stderr   string
	Err      error // of its exit: nil for status 0
	TimedOut bool  // the session's Timeout killed it
	Sent     int64 // bytes written to its stdin
	SendErr  error // writing them failed (the process ended first)
	Received int64 // bytes it wrote to stdout
	Corrupt  int64 // the first offset at which they differ from the peer's stream; -1 if none
}

// First is side's first event of kind, or nil.
func (r SideResult) First(kind string) *Event {
	for i := range r.Events {
		if r.Events[i].Event == kind {
			return &r.Events[i]
		}
	}
	return nil
}

// All is side's events of kind, in order.
func (r SideResult) All(kind string) []Event {
	var out []Event
	for _, e := range r.Events {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

// Check reports whether both connects exited 0 and each delivered the
// other's whole stream, byte for byte; the error says what went wrong on
// which side.
func (r *SessionResult) Check() error {
	var errs []error
	for i, s := range r.Sides {
		peer := r.Sides[1-i]
		switch {
		case s.TimedOut:
			errs = append(errs, fmt.Errorf("%s: timed out after %v", s.Name, r.Elapsed.Round(time.Millisecond)))
		case s.Err != nil:
			reason := ""
			if f := s.First("failed"); f != nil {
				reason = ": " + f.Reason
			}
			errs = append(errs, fmt.Errorf("%s: %v%s", s.Name, s.Err, reason))
		}
		if s.SendErr != nil {
			errs = append(errs, fmt.Errorf("%s: writing its stream after %d bytes: %w", s.Name, s.Sent, s.SendErr))
		}
		if s.Corrupt >= 0 {
			errs = append(errs, fmt.Errorf("%s: received %s's stream wrong from byte %d on", s.Name, peer.Name, s.Corrupt))
		}
		if s.Received != peer.Sent {
			errs = append(errs, fmt.Errorf("%s: received %d bytes of the %d %s sent", s.Name, s.Received, peer.Sent, peer.Name))
		}
	}
	return errors.Join(errs...)
}

// Stop ends the session at once: both connects are killed.
func (ss *Session) Stop() {
	ss.Finish()
	ss.cancel()
}
