package sdp

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/icetcp/icetcp/signaling"
)

// ChannelConfig configures a Channel. The zero value answers an offer and
// keeps the local lines for Local.
type ChannelConfig struct {
	// Offerer tells that this side sends the SDP offer; with the remote
	// side's a=ice-lite it decides the roles (Controlling). false: this
	// side answers.
	Offerer bool
	// OnLocal, when set, receives the agent's own ICE attribute lines as
	// they come, without line endings: first a=ice-ufrag, a=ice-pwd and
	// a=ice-options:trickle together, then one a=candidate line per call,
	// then a=end-of-candidates. It runs on the goroutine that calls Send
	// (the agent's signaling writer): it may block, which holds back the
	// agent's later messages, not its checks. nil: only Local and
	// LocalDone.
	OnLocal func(lines []string)
}

// Channel is a signaling.Channel over an application's SDP offer/answer
// exchange. The agent's messages become SDP lines (OnLocal, Local); the
// application feeds the remote SDP in with AddRemote, and the agent
// receives credentials (with the role that offer/answer implies),
// candidates and end-of-candidates.
//
// Messages SDP cannot carry (punch timing, bye) are accepted by Send and
// dropped. Create it with NewChannel.
type Channel struct {
	cfg       ChannelConfig
	ready     chan struct{} // capacity 1: "queue changed"
	closed    chan struct{}
	localDone chan struct{} // closed after the local end-of-candidates
	closeOnce sync.Once
	doneOnce  sync.Once

	mu sync.Mutex
	// guarded by mu
	queue      []signaling.Message
	gone       bool // RemoteGone was called: peer-left follows the queue
	leftSent   bool // peer-left was returned once
	local      Attributes
	remote     Attributes // what was passed on to the agent
	remoteSeen map[string]bool
	failed     error // AddRemote's first error: Recv reports it after the queue
}

var _ signaling.Channel = (*Channel)(nil)

// NewChannel returns a Channel for one agent and one remote description.
func NewChannel(cfg ChannelConfig) *Channel {
	return &Channel{
		cfg:        cfg,
		ready:      make(chan struct{}, 1),
		closed:     make(chan struct{}),
		localDone:  make(chan struct{}),
		remoteSeen: map[string]bool{},
	}
}

// Send takes one message from the agent and hands its SDP lines to OnLocal.
// carried drops the extensions whose messages SDP cannot carry:
// "icetcp-done" needs a checks-done message, which has no SDP line.
func carried(features []string) []string {
	out := features[:0:0]
	for _, f := range features {
		if f != "icetcp-done" {
			out = append(out, f)
		}
	}
	return out
}

func (c *Channel) Send(ctx context.Context, m signaling.Message) error {
	if err := c.check(ctx); err != nil {
		return fmt.Errorf("sdp: send: %w", err)
	}
	if _, err := signaling.Encode(m); err != nil {
		return fmt.Errorf("sdp: send: %w", err)
	}
	var lines []string
	c.mu.Lock()
	switch m.Type {
	case signaling.TypeCredentials:
		// The agent's extensions travel as ICE options (RFC 8445 §5.6.3),
		// which agents that do not know them ignore.
		c.local.Ufrag, c.local.Pwd, c.local.Options = m.Ufrag, m.Pwd, append([]string{"trickle"}, carried(m.Features)...)
		lines = Lines(Attributes{Ufrag: m.Ufrag, Pwd: m.Pwd, Options: c.local.Options})
	case signaling.TypeCandidate:
		c.local.Candidates = append(c.local.Candidates, m.Candidate)
		lines = []string{candidateLine(m.Candidate)}
	case signaling.TypeEndOfCandidates:
		c.local.EndOfCandidates = true
		lines = []string{"a=end-of-candidates"}
	}
	c.mu.Unlock()
	if m.Type == signaling.TypeEndOfCandidates {
		c.doneOnce.Do(func() { close(c.localDone) })
	}
	if len(lines) > 0 && c.cfg.OnLocal != nil {
		c.cfg.OnLocal(lines)
	}
	return nil
}

// Local returns the local attributes sent so far: for an application that
// does not trickle, Marshal(Local()) after LocalDone is the ICE part of its
// description.
func (c *Channel) Local() Attributes {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.local
	a.Options = slices.Clone(a.Options)
	a.Candidates = slices.Clone(a.Candidates)
	return a
}

// LocalDone is closed once the agent has sent its end-of-candidates.
func (c *Channel) LocalDone() <-chan struct{} { return c.localDone }

// features picks the ICE options that can name agent extensions (what
// the signaling schema accepts as a feature name).
func features(options []string) []string {
	var out []string
	for _, o := range options {
		if o == "trickle" || len(out) == signaling.MaxFeatures {
			continue
		}
		if _, err := signaling.Encode(signaling.Message{Type: signaling.TypeEndOfCandidates, Features: []string{o}}); err == nil {
			out = append(out, o)
		}
	}
	return out
}

// AddRemote passes the remote side's SDP to the agent. Its unit is a
// whole offer or answer, an RFC 8840 trickle fragment, or single lines: a
// candidate ("a=candidate:..." or "candidate:...") or a=end-of-candidates
// may come one line per call, but a=ice-ufrag and a=ice-pwd come in the
// same call (a credential without the other cannot be passed on). The
// input is parsed as Parse does. It may be called any number of times:
// credentials go to the agent once (new ones, an ICE restart, go too and
// the agent rejects them), each candidate line once, and
// end-of-candidates once. Candidates may come before the credentials.
//
// SDP it cannot use is an error (a *ParseError), and it breaks the
// Channel: after what earlier calls queued, Recv returns a *RemoteError,
// so the agent fails at once rather than waiting for credentials that
// will not come; later calls return the same error.
func (c *Channel) AddRemote(s string) error {
	c.mu.Lock()
	failed := c.failed
	c.mu.Unlock()
	if failed != nil {
		return failed
	}
	a, err := Parse(s)
	if err != nil {
		c.mu.Lock()
		if c.failed == nil {
			c.failed = err
		}
		c.mu.Unlock()
		c.wake()
		return err
	}
	select {
	case <-c.closed:
		return fmt.Errorf("sdp: add remote: %w", signaling.ErrClosed)
	default:
	}
	c.mu.Lock()
	if a.Ufrag != "" && (a.Ufrag != c.remote.Ufrag || a.Pwd != c.remote.Pwd) {
		c.remote.Ufrag, c.remote.Pwd = a.Ufrag, a.Pwd
		c.remote.Lite = a.Lite
		role := signaling.RoleControlled
		if !Controlling(c.cfg.Offerer, false, a.Lite) {
			role = signaling.RoleControlling
		}
		c.queue = append(c.queue, signaling.Message{V: signaling.Version, Type: signaling.TypeCredentials, Ufrag: a.Ufrag, Pwd: a.Pwd, Role: role,
			Features: features(a.Options)})
	}
	for _, cand := range a.Candidates {
		if c.remoteSeen[cand] {
			continue
		}
		c.remoteSeen[cand] = true
		c.remote.Candidates = append(c.remote.Candidates, cand)
		c.queue = append(c.queue, signaling.Message{V: signaling.Version, Type: signaling.TypeCandidate, Candidate: cand})
	}
	if a.EndOfCandidates && !c.remote.EndOfCandidates {
		c.remote.EndOfCandidates = true
		c.queue = append(c.queue, signaling.Message{V: signaling.Version, Type: signaling.TypeEndOfCandidates})
	}
	c.mu.Unlock()
	c.wake()
	return nil
}

// RemoteGone tells the agent that the remote side went away (the
// application's offer/answer session ended): after what AddRemote queued,
// Recv returns one TypePeerLeft message, then errors wrapping ErrPeerLeft.
func (c *Channel) RemoteGone() {
	c.mu.Lock()
	c.gone = true
	c.mu.Unlock()
	c.wake()
}

func (c *Channel) wake() {
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

func (c *Channel) check(ctx context.Context) error {
	select {
	case <-c.closed:
		return signaling.ErrClosed
	default:
	}
	return ctx.Err()
}

// Recv returns the next message for the agent.
func (c *Channel) Recv(ctx context.Context) (signaling.Message, error) {
	for {
		if err := c.check(ctx); err != nil {
			return signaling.Message{}, fmt.Errorf("sdp: recv: %w", err)
		}
		c.mu.Lock()
		switch {
		case len(c.queue) > 0:
			m := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			c.wake() // a second concurrent Recv may take the next one
			return m, nil
		case c.failed != nil:
			err := c.failed
			c.mu.Unlock()
			return signaling.Message{}, &RemoteError{Err: err}
		case c.gone && !c.leftSent:
			c.leftSent = true
			c.mu.Unlock()
			return signaling.Message{V: signaling.Version, Type: signaling.TypePeerLeft}, nil
		case c.gone:
			c.mu.Unlock()
			return signaling.Message{}, fmt.Errorf("sdp: recv: %w", signaling.ErrPeerLeft)
		}
		c.mu.Unlock()
		select {
		case <-c.ready:
		case <-c.closed:
		case <-ctx.Done():
		}
	}
}

// Close makes Send, Recv and AddRemote return errors wrapping
// signaling.ErrClosed. It is idempotent.
func (c *Channel) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}
