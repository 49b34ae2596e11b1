package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/secure"
)

// eventWriter writes connect's events to stderr, as JSON lines with --json:
// the agent's (it is the agent's Tracer) and connect's own, in the order
// they happened, from one goroutine, so the agent never waits for stderr.
// The agent's states are passed on until a pair is selected; from then on
// the session's outcome is connect's own to tell, once: "done" or
// "failed" (the agent's closed or failed state at the end says how its
// connection ended, which a clean transfer and a lost peer can share).
// With --trace every step the agent traces is written too.
type eventWriter struct {
	// onRefusal, if set, is told of a proxy's refusal among the agent's
	// warnings (on the agent's goroutine: it must not block).
	onRefusal func(error)

	w     io.Writer
	json  bool
	trace bool
	quiet bool // no notices (--quiet); the summary and errors still
	q     chan map[string]any
	ended chan struct{}
	past  atomic.Bool   // a pair is selected
	lost  atomic.Uint64 // warnings and trace lines dropped: the writer fell behind
	once  sync.Once
}

// eventQueue bounds what waits for stderr; only warnings and --trace lines
// are ever dropped, and the end says how many.
const eventQueue = 4096

func newEventWriter(w io.Writer, jsonOut, trace bool) *eventWriter {
	e := &eventWriter{w: w, json: jsonOut, trace: trace, q: make(chan map[string]any, eventQueue), ended: make(chan struct{})}
	go e.run()
	return e
}

func (e *eventWriter) run() {
	defer close(e.ended)
	for v := range e.q {
		e.write(v)
	}
	if n := e.lost.Load(); n > 0 {
		e.write(map[string]any{"event": "warning", "message": fmt.Sprintf("%d warnings or trace events not written: stderr was too slow", n)})
	}
}

// close writes what is queued; nothing may be emitted after it.
func (e *eventWriter) close() {
	e.once.Do(func() { close(e.q) })
	<-e.ended
}

// emit queues v; it waits for room (it is never called on the agent's
// goroutine).
func (e *eventWriter) emit(v map[string]any) { e.q <- v }

func (e *eventWriter) write(v map[string]any) {
	if e.json {
		b, _ := json.Marshal(v)
		fmt.Fprintf(e.w, "%s\n", b)
		return
	}
	if e.quiet {
		switch v["event"] {
		case "selected", "secured", "relay":
			return // --quiet: errors, warnings and the summary only
		}
	}
	switch v["event"] {
	case "selected":
		fmt.Fprintf(e.w, "icetcp: connected (%s) in %v ms\n  local  %s\n  remote %s\n", v["path"], v["connect_ms"], v["local"], v["remote"])
		if v["proxy"] != nil {
			fmt.Fprintf(e.w, "  proxy  %s\n", v["proxy"])
		}
	case "failed":
		fmt.Fprintf(e.w, "icetcp: failed: %s\n", v["reason"])
	case "warning":
		fmt.Fprintf(e.w, "icetcp: warning: %s\n", v["message"])
	case "relay":
		if v["proxy"] != nil {
			fmt.Fprintf(e.w, "icetcp: relay %s on %s through proxy %s\n", v["relayed"], v["server"], v["proxy"])
		}
	case "secured":
		fmt.Fprintf(e.w, "icetcp: end-to-end secured (%s) in %v ms\n", v["role"], v["handshake_ms"])
	case "path":
		fmt.Fprintf(e.w, "icetcp: moved to the %s path after %v bytes\n  local  %s\n  remote %s\n", v["path"], v["at_bytes"], v["local"], v["remote"])
	case "resumed":
		fmt.Fprintf(e.w, "icetcp: resumed over the %s path\n", v["path"])
	case "trace":
		fmt.Fprintf(e.w, "icetcp: trace %s\n", v["line"])
	case "line":
		fmt.Fprintln(e.w, v["line"])
	}
}

// Trace is the agent's Tracer: on the agent's goroutine, so it only
// queues, never waits.
func (e *eventWriter) Trace(te agent.TraceEvent) {
	var v map[string]any
	switch te.Kind {
	case agent.TraceState:
		if e.past.Load() {
			return
		}
		v = map[string]any{"event": "state", "state": te.State.String()}
	case agent.TraceWarning:
		v = map[string]any{"event": "warning", "message": te.Err.Error()}
		var pe *agent.ProxyError
		if e.onRefusal != nil && errors.As(te.Err, &pe) && pe.Refused() {
			e.onRefusal(te.Err)
		}
	case agent.TracePathMoved:
		// The session moved (an upgrade from the relay, or a resumption
		// after a broken path): told whatever the phase.
		v = map[string]any{"event": "path", "path": te.Path, "local": te.Pair.Local.Marshal(),
			"remote": te.Pair.Remote.Marshal(), "at_bytes": te.AtBytes}
		if te.Pair.Attempts > 0 {
			v["attempts"] = te.Pair.Attempts
		}
		e.q <- v
		if te.Resumed {
			v = map[string]any{"event": "resumed", "path": te.Path, "at_bytes": te.AtBytes}
		} else {
			v = nil
		}
	case agent.TraceRelay:
		if te.Err != nil {
			break // a warning says it
		}
		v = map[string]any{"event": "relay", "server": te.Relay.Server, "relayed": te.Relay.Relayed.String(), "mapped": te.Relay.Mapped.String()}
		if te.Relay.Proxy != "" {
			v["proxy"] = te.Relay.Proxy
		}
	}
	switch {
	case v == nil:
	case te.Kind == agent.TraceWarning:
		// A peer that sends garbage makes warnings: they must not make
		// the agent wait.
		select {
		case e.q <- v:
		default:
			e.lost.Add(1)
		}
	default:
		e.q <- v // states and relays: a handful per session, never dropped
	}
	if e.trace {
		e.traceLine(te)
	}
}

// traceLine queues one --trace line, or counts it as lost.
func (e *eventWriter) traceLine(te agent.TraceEvent) {
	v := map[string]any{"event": "trace", "kind": te.Kind.String(), "t": te.Time.UTC().Format(time.RFC3339Nano)}
	line := te.Kind.String()
	if te.Pair != nil {
		v["local"], v["remote"], v["pair_state"] = te.Pair.Local.Marshal(), te.Pair.Remote.Marshal(), te.Pair.State
		line += fmt.Sprintf(" %s %s -> %s %s", te.Pair.Local.TCPType, te.Pair.Local.Addr, te.Pair.Remote.TCPType, te.Pair.Remote.Addr)
	}
	if te.Candidate != nil {
		v["candidate"] = te.Candidate.Marshal()
		line += " " + te.Candidate.Marshal()
	}
	if te.NAT != "" {
		v["nat"], v["local_nat"] = te.NAT, te.Local
		line += " " + te.NAT
	}
	if te.Addr != "" {
		v["addr"] = te.Addr
		line += " " + te.Addr
	}
	if te.RTT > 0 {
		v["rtt_ms"] = float64(te.RTT.Microseconds()) / 1000
	}
	if te.Attempts > 0 {
		v["attempts"] = te.Attempts
	}
	if te.UseCandidate {
		v["use_candidate"] = true
	}
	if te.Err != nil {
		v["error"] = te.Err.Error()
		line += ": " + te.Err.Error()
	}
	v["line"] = line
	select {
	case e.q <- v:
	default:
		e.lost.Add(1)
	}
}

func (e *eventWriter) selected(c *agent.Conn) {
	v := map[string]any{
		"event": "selected", "local": c.Local().Marshal(), "remote": c.Remote().Marshal(),
		"path": c.Path(), "connect_ms": c.ConnectTime().Milliseconds(),
	}
	st := c.Agent().Stats()
	if st.LocalNAT != "" {
		v["nat_local"] = st.LocalNAT
	}
	if st.RemoteNAT != "" {
		v["nat_remote"] = st.RemoteNAT
	}
	if st.Selected != nil && st.Selected.Attempts > 0 {
		v["attempts"] = st.Selected.Attempts
	}
	// The relay under our side of the pair (an active relayed candidate
	// has port 9: match the allocation by its addresses).
	for _, r := range st.Relays {
		if l := c.Local(); r.Proxy != "" && l.Type == candidate.Relay && l.Addr.Addr() == r.Relayed.Addr() && l.Related == r.Mapped {
			v["proxy"] = r.Proxy
		}
	}
	// The agent traced "connected" before Connect returned, into the same
	// queue: "selected" comes after it.
	e.past.Store(true)
	e.emit(v)
}

func (e *eventWriter) failed(err error) {
	ev := map[string]any{"event": "failed", "reason": err.Error()}
	var te *secure.TruncatedError
	if errors.As(err, &te) {
		ev["received"] = te.Received
	}
	if errors.Is(err, agent.ErrPeerInterrupted) {
		ev["reason"] = "interrupted by the peer"
		if te != nil {
			ev["reason"] = fmt.Sprintf("interrupted by the peer after %d bytes", te.Received)
		}
	}
	var ie *interruptedError
	if errors.As(err, &ie) {
		ev["reason"] = "interrupted (" + ie.sig.String() + ")"
	}
	var pe *agent.ProxyError
	if errors.As(err, &pe) {
		ev["proxy"] = pe.Proxy
		if pe.Status != 0 {
			ev["proxy_status"] = pe.Status
		}
	}
	e.emit(ev)
}

// fail reports err as the failed event and returns the command's error:
// with --json the event is the report, so main prints nothing more.
func (e *eventWriter) fail(jsonOut bool, err error) error {
	if jsonOut {
		e.failed(err)
	}
	return silentOr(jsonOut, err)
}

func (e *eventWriter) warning(msg string) {
	e.emit(map[string]any{"event": "warning", "message": msg})
}

func (e *eventWriter) secured(c *secure.Conn, took time.Duration) {
	role := "responder"
	if c.Initiator() {
		role = "initiator"
	}
	e.emit(map[string]any{"event": "secured", "role": role, "handshake_ms": took.Milliseconds()})
}
