package agent

import (
	"fmt"
	"time"

	"github.com/icetcp/icetcp/candidate"
)

// Tracer observes what an agent does, step by step, for logs, counters and
// metrics (package agent/agentmetrics exports them to Prometheus; connect
// --trace prints them). Trace is called on the agent's own goroutine, one
// event at a time and in the order things happened: it must return
// quickly, must not block and must not call the agent. Copy what you keep
// of an event: its pointers are not reused, but nothing promises that.
//
// A nil Tracer (Config.Tracer's zero value) costs nothing. OnEvent is the
// simpler stream of states, the selection, relays and warnings, delivered
// on a goroutine of its own; a Tracer sees those too, and every check,
// answer, punch, permission, nomination and consent failure besides.
type Tracer interface {
	Trace(TraceEvent)
}

// TracerFunc is a function that is a Tracer.
type TracerFunc func(TraceEvent)

// Trace calls f.
func (f TracerFunc) Trace(e TraceEvent) { f(e) }

// TraceKind says what a TraceEvent reports, and so which of its fields are
// set.
type TraceKind int

const (
	// TraceState: the agent entered State (Err: the failure, for
	// StateFailed).
	TraceState TraceKind = iota
	// TraceWarning: bad input or a failed side task (a STUN server, a
	// relay); Err says what. The agent carries on.
	TraceWarning
	// TraceLocal: Candidate was gathered (host, server-reflexive, relayed).
	TraceLocal
	// TraceRemote: the peer's Candidate arrived, or was learned from one of
	// its checks (peer-reflexive).
	TraceRemote
	// TraceNATClass: NAT is the class measured for this host (Local true)
	// or sent by the peer.
	TraceNATClass
	// TraceRelay: a TURN allocation was made (Relay) or failed (Relay with
	// the server only, Err).
	TraceRelay
	// TracePermission: a TURN permission for Addr was asked on Relay; Err
	// is the server's refusal, if any.
	TracePermission
	// TraceCheckStarted: a check on Pair began (its connect or punch
	// first, when the pair has no connection yet).
	TraceCheckStarted
	// TraceCheckSucceeded: our check on Pair was answered in RTT.
	TraceCheckSucceeded
	// TraceCheckFailed: Pair failed; Err says why.
	TraceCheckFailed
	// TraceCheckAnswered: we answered the peer's check on Pair
	// (UseCandidate: it nominated the pair).
	TraceCheckAnswered
	// TracePunchStarted: the simultaneous open of Pair sent its first SYN.
	TracePunchStarted
	// TracePunchFinished: the simultaneous open of Pair ended: connected
	// on round Attempts (0 when the peer's SYN was accepted instead), or
	// not (Err).
	TracePunchFinished
	// TraceNominated: Pair was nominated: our USE-CANDIDATE went out
	// (controlling), or we committed to the peer's (controlled).
	TraceNominated
	// TraceSelected: Pair is the selected pair; RTT is the time from the
	// peer's credentials to selection.
	TraceSelected
	// TraceConsentExpired: the peer stopped answering consent checks on
	// the selected pair (RFC 7675); Err says for how long.
	TraceConsentExpired
	// TracePathMoved: the session moved to Pair (icetcp-session) after
	// AtBytes bytes of both streams; Resumed: its path had broken.
	TracePathMoved
	// TracePathLost: the session's path broke (Err); it looks for another.
	TracePathLost
)

var traceKindNames = [...]string{"state", "warning", "local", "remote", "nat", "relay", "permission",
	"check-started", "check-succeeded", "check-failed", "check-answered",
	"punch-started", "punch-finished", "nominated", "selected", "consent-expired",
	"path-moved", "path-lost"}

func (k TraceKind) String() string {
	if k < 0 || int(k) >= len(traceKindNames) {
		return fmt.Sprintf("TraceKind(%d)", int(k))
	}
	return traceKindNames[k]
}

// TraceEvent is one step of an agent. Which fields are set depends on Kind.
type TraceEvent struct {
	Kind         TraceKind
	Time         time.Time
	State        State
	Candidate    *candidate.Candidate
	Pair         *PairStats
	Relay        *RelayStats
	NAT          string // natcheck's text form
	Local        bool   // TraceNATClass: our own class
	Addr         string // TracePermission: the peer address permitted
	UseCandidate bool
	RTT          time.Duration
	Attempts     int
	AtBytes      uint64 // TracePathMoved
	Resumed      bool   // TracePathMoved
	Path         string // TracePathMoved: "direct" or "relay"
	Err          error
}

// tracer calls Config.Tracer when there is one; it runs on the loop.
type tracer struct{ t Tracer }

func (tr tracer) on() bool { return tr.t != nil }

func (tr tracer) trace(e TraceEvent) {
	if tr.t != nil {
		tr.t.Trace(e)
	}
}

// pair traces an event about p; it builds p's stats only when traced.
func (tr tracer) pair(kind TraceKind, p *pair, now time.Time, err error) {
	if tr.t == nil {
		return
	}
	st := p.stats()
	tr.t.Trace(TraceEvent{Kind: kind, Time: now, Pair: &st, RTT: p.rtt, Attempts: p.punchAttempts, Err: err})
}

func (tr tracer) candidate(kind TraceKind, c candidate.Candidate, now time.Time) {
	if tr.t == nil {
		return
	}
	tr.t.Trace(TraceEvent{Kind: kind, Time: now, Candidate: &c})
}
