package agent

import (
	"sync"
	"time"
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

func (s State) String() string {
	return [...]string{"new", "gathering", "checking", "connected", "failed", "closed"}[s]
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
)

func (t EventType) String() string {
	return [...]string{"state", "selected", "warning"}[t]
}

// Event is one observable change of the agent.
type Event struct {
	Type  EventType
	Time  time.Time
	State State      // EventState
	Pair  *PairStats // EventSelected
	Err   error      // EventWarning; for StateFailed the failure
}

// eventQueue delivers events to the user's callback in order on its own
// goroutine, so a slow callback never stalls the agent loop.
type eventQueue struct {
	fn func(Event)

	mu      sync.Mutex // guards following
	q       []Event
	running bool
}

func (e *eventQueue) emit(ev Event) {
	if e == nil || e.fn == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.q = append(e.q, ev)
	if !e.running {
		e.running = true
		go e.drain()
	}
}

func (e *eventQueue) drain() {
	for {
		e.mu.Lock()
		if len(e.q) == 0 {
			e.running = false
			e.mu.Unlock()
			return
		}
		ev := e.q[0]
		e.q = e.q[1:]
		e.mu.Unlock()
		e.fn(ev)
	}
}
