package interop

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options configure a peer. The zero value is a controlled peer on
// 127.0.0.1.
type Options struct {
	// Controlling makes the peer start as the controlling agent (libnice
	// controlling-mode, pion Dial, libwebrtc offerer); false: controlled.
	Controlling bool
	// Addr is the only local address the peer gathers; zero: 127.0.0.1.
	Addr netip.Addr
	// Wrap, when set, turns a process peer's command line into the command
	// to run, e.g. `ip netns exec NS ...` in the NAT lab.
	Wrap func(name string, args ...string) *exec.Cmd
	// CheckInterval is pion's tick (AgentConfig.CheckInterval); its
	// keepalive interval and disconnected and failed timeouts are raised to
	// it when smaller, since pion ticks at the smallest of the four; pion
	// never ticks slower than every 2 s (a constant in its check loop). Zero: pion's 200ms. Other
	// peers ignore it.
	CheckInterval time.Duration
	// DirectIO (pion only) leaves the selected connection to the caller:
	// the peer neither reads nor writes it, and PionConn returns it.
	DirectIO bool
	// Debug turns on the agent's own debug log (NICE_DEBUG, pion's
	// LoggerFactory at debug); Log returns it.
	Debug bool
}

func (o Options) addr() netip.Addr {
	if o.Addr.IsValid() {
		return o.Addr
	}
	return netip.MustParseAddr("127.0.0.1")
}

func (o Options) role() string {
	if o.Controlling {
		return "controlling"
	}
	return "controlled"
}

// driver runs one third-party agent. do must not block for long; events
// come back through the emit function given at construction.
type driver interface {
	do(c command) error
	stop() error
}

// Peer is a third-party ICE agent under test.
type Peer struct {
	kind string
	opts Options
	drv  driver
	log  *logBuffer

	attachWG   sync.WaitGroup
	attachStop chan struct{}
	stopOnce   sync.Once
	stopErr    error

	mu sync.Mutex
	// guarded by mu
	changed    chan struct{} // closed and replaced on every change
	ufrag, pwd string
	cands      []string
	gathered   bool
	sdp        string
	states     []string
	selected   [2]string
	received   []byte
	readEnd    *string // "" clean end of stream, else the error
	sent       int
	errs       []string
}

func newPeer(kind string, opts Options) *Peer {
	return &Peer{kind: kind, opts: opts, log: &logBuffer{}, changed: make(chan struct{}), attachStop: make(chan struct{})}
}

// Kind names the agent: "libnice", "pion" or "libwebrtc".
func (p *Peer) Kind() string { return p.kind }

// Controlling reports the role the peer started with.
func (p *Peer) Controlling() bool { return p.opts.Controlling }

// emit records one event from the driver.
func (p *Peer) emit(e event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Ev {
	case "credentials":
		p.ufrag, p.pwd = e.Ufrag, e.Pwd
	case "candidate":
		p.cands = append(p.cands, e.Line)
	case "gathering-done":
		p.gathered, p.sdp = true, e.SDP
	case "state":
		p.states = append(p.states, e.State)
	case "selected":
		p.selected = [2]string{e.Local, e.Remote}
	case "data":
		p.received = append(p.received, e.Data...)
	case "read-end":
		s := e.Error
		p.readEnd = &s
	case "sent":
		p.sent = e.N
	case "error":
		p.errs = append(p.errs, e.Error)
	}
	p.log.printf("%s event %s %s%s%s%s", p.kind, e.Ev, e.State, e.Line, e.Error, summarizeData(e))
	close(p.changed)
	p.changed = make(chan struct{})
}

func summarizeData(e event) string {
	switch e.Ev {
	case "sent":
		return fmt.Sprintf("%d bytes", e.N)
	case "data": // the size only: when and how much arrived, not what
		return fmt.Sprintf("%d bytes", len(e.Data))
	}
	return ""
}

// wait blocks until cond (called under the lock) holds, ctx ends or the
// peer stops.
func (p *Peer) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		p.mu.Lock()
		ok, ch := cond(), p.changed
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("interop: %s: waiting for %s: %w", p.kind, what, ctx.Err())
		case <-p.attachStop:
			return fmt.Errorf("interop: %s: stopped while waiting for %s", p.kind, what)
		}
	}
}

// WaitState waits until the peer reaches state (StateConnected, ...). A
// peer that reports StateFailed first makes it return an error wrapping
// ErrFailed.
func (p *Peer) WaitState(ctx context.Context, state string) error {
	var failed bool
	err := p.wait(ctx, "state "+state, func() bool {
		failed = slices.Contains(p.states, StateFailed) && state != StateFailed
		return failed || slices.Contains(p.states, state)
	})
	if failed {
		return fmt.Errorf("%w: %s went %s", ErrFailed, p.kind, strings.Join(p.States(), " → "))
	}
	return err
}

// ErrFailed: the peer's ICE failed.
var ErrFailed = errors.New("interop: peer failed")

// States returns every state the peer reported, in order.
func (p *Peer) States() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.states)
}

// Failed reports whether the peer reported StateFailed at any time.
func (p *Peer) Failed() bool { return slices.Contains(p.States(), StateFailed) }

// Selected returns the peer's selected pair as it reports it (local
// candidate, remote address), empty before selection.
func (p *Peer) Selected() (local, remote string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.selected[0], p.selected[1]
}

// Candidates returns the peer's local candidate lines ("candidate:...").
func (p *Peer) Candidates() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.cands)
}

// LocalSDP waits for the end of gathering and returns the SDP the agent
// itself wrote (libnice generate_local_sdp, libwebrtc's local
// description); "" for pion/ice, which writes none.
func (p *Peer) LocalSDP(ctx context.Context) (string, error) {
	if err := p.wait(ctx, "gathering", func() bool { return p.gathered }); err != nil {
		return "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sdp, nil
}

// Send queues b for the peer to send once connected.
func (p *Peer) Send(b []byte) error { return p.drv.do(command{Op: "send", Data: b}) }

// Close makes the peer close its connection once everything queued is
// sent (none of these agents can half-close).
func (p *Peer) Close() error { return p.drv.do(command{Op: "close"}) }

// WaitSent waits until the peer has written n bytes in total.
func (p *Peer) WaitSent(ctx context.Context, n int) error {
	return p.wait(ctx, fmt.Sprintf("%d bytes sent", n), func() bool { return p.sent >= n || p.readEnd != nil && p.sent > 0 })
}

// WaitReceived waits until the peer has received n bytes or its read side
// ended, and returns what it received. Fewer than n bytes come with an
// error that says how the read side ended.
func (p *Peer) WaitReceived(ctx context.Context, n int) ([]byte, error) {
	err := p.wait(ctx, fmt.Sprintf("%d bytes", n), func() bool { return len(p.received) >= n || p.readEnd != nil })
	p.mu.Lock()
	defer p.mu.Unlock()
	got := slices.Clone(p.received)
	switch {
	case len(got) >= n:
		return got, nil
	case p.readEnd != nil && *p.readEnd == "":
		return got, fmt.Errorf("interop: %s: end of stream after %d of %d bytes", p.kind, len(got), n)
	case p.readEnd != nil:
		return got, fmt.Errorf("interop: %s: read failed after %d of %d bytes: %s", p.kind, len(got), n, *p.readEnd)
	}
	return got, err
}

// Received returns what the peer has received so far.
func (p *Peer) Received() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.received)
}

// Errors returns the errors the peer reported (bad candidate lines, write
// failures).
func (p *Peer) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.errs)
}

// Log returns the peer's event log and the agent's own output.
func (p *Peer) Log() string { return p.log.String() }

// Stop ends the peer: the agent and its process, and the signaling
// goroutines. It is idempotent.
func (p *Peer) Stop() error {
	p.stopOnce.Do(func() {
		close(p.attachStop)
		p.stopErr = p.drv.stop()
		p.attachWG.Wait()
	})
	return p.stopErr
}

// logBuffer is a goroutine-safe log with timestamps relative to its start.
type logBuffer struct {
	mu    sync.Mutex // guards following
	start time.Time
	b     strings.Builder
}

func (l *logBuffer) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() {
		l.start = time.Now()
	}
	fmt.Fprintf(&l.b, "%8.3fs ", time.Since(l.start).Seconds())
	fmt.Fprintf(&l.b, format, args...)
	l.b.WriteByte('\n')
}

// Write takes raw output (a child's stderr) line by line.
func (l *logBuffer) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		l.printf("%s", line)
	}
	return len(b), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WaitStarted waits until the agent exists and has told its credentials
// (a process peer has started), so that timing can begin.
func (p *Peer) WaitStarted(ctx context.Context) error {
	return p.wait(ctx, "credentials", func() bool { return p.ufrag != "" })
}

// WaitGathered waits for the end of the peer's gathering.
func (p *Peer) WaitGathered(ctx context.Context) error {
	return p.wait(ctx, "gathering", func() bool { return p.gathered })
}
