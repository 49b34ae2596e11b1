package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/logging"
)

// State is the agent's connection state.
type State int

const (
	StateNew State = iota
	StateGathering
	StateChecking
	StateConnected
	StateFailed
	StateClosed
)

var stateNames = [...]string{"new", "gathering", "checking", "connected", "failed", "closed"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

// EventType tells what an Event reports.
type EventType int

const (
	// EventState: the agent entered Event.State.
	EventState EventType = iota
	// EventSelected: Event.Pair is the selected pair.
	EventSelected
	// EventWarning: bad input was rejected (Event.Err says what); the
	// agent carries on.
	EventWarning
	// EventRelay: a TURN allocation gave relayed candidates; Event.Relay
	// says on which server, at which address and through which proxy.
	EventRelay
	// EventPath: the session moved to Event.Pair (icetcp-session), after
	// Event.AtBytes bytes of both streams.
	EventPath
	// EventResumed: the session's path had broken and it carries on over
	// Event.Pair; an EventPath for the same move precedes it.
	EventResumed
)

var eventNames = [...]string{"state", "selected", "warning", "relay", "path", "resumed"}

func (t EventType) String() string {
	if t < 0 || int(t) >= len(eventNames) {
		return fmt.Sprintf("EventType(%d)", int(t))
	}
	return eventNames[t]
}

// Event is one observable change of the agent.
type Event struct {
	Type  EventType
	Time  time.Time
	State State       // EventState
	Pair  *PairStats  // EventSelected
	Err   error       // EventWarning; for StateFailed the failure
	Relay *RelayStats // EventRelay
	// AtBytes is where both streams were at a move: bytes we sent plus
	// bytes we received (EventPath, EventResumed).
	AtBytes uint64
}

// maxQueuedWarnings bounds the warnings waiting for a slow OnEvent: a peer
// that sends garbage must not grow our memory. State and selection events
// are few and never dropped.
const maxQueuedWarnings = 64

// eventQueue delivers events to the user's callback in order on its own
// goroutine, so a slow callback never stalls the agent loop. The goroutine
// runs only while events are queued and is counted in the agent's
// WaitGroup, so Close returns after the last callback.
type eventQueue struct {
	fn  func(Event)
	wg  *sync.WaitGroup
	log logging.LeveledLogger

	mu       sync.Mutex // guards following
	q        []Event
	warnings int // warnings in q
	dropped  int
	running  bool
}

func (e *eventQueue) emit(ev Event) {
	if e == nil || e.fn == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Type == EventWarning {
		if e.warnings >= maxQueuedWarnings {
			e.dropped++
			return
		}
		e.warnings++
	}
	e.q = append(e.q, ev)
	if !e.running {
		e.running = true
		e.wg.Add(1)
		go e.drain()
	}
}

func (e *eventQueue) drain() {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if len(e.q) == 0 {
			if e.dropped > 0 {
				e.log.Warnf("%d warnings not delivered to OnEvent (it was slow)", e.dropped)
				e.dropped = 0
			}
			e.running = false
			e.q = nil
			e.mu.Unlock()
			return
		}
		ev := e.q[0]
		e.q[0] = Event{}
		e.q = e.q[1:]
		if ev.Type == EventWarning {
			e.warnings--
		}
		e.mu.Unlock()
		e.fn(ev)
	}
}
