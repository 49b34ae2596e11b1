package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
)

// pairState is a pair's check state (RFC 8445 §6.1.2.6).
type pairState uint8

const (
	stateFrozen pairState = iota
	stateWaiting
	stateInProgress
	stateSucceeded
	stateFailed
)

var pairStateNames = [...]string{"frozen", "waiting", "in-progress", "succeeded", "failed"}

func (s pairState) String() string {
	if int(s) >= len(pairStateNames) {
		return fmt.Sprintf("pairState(%d)", s)
	}
	return pairStateNames[s]
}

// transaction is an outstanding Binding request.
type transaction struct {
	id           [stun.TransactionIDSize]byte
	sent         time.Time
	useCandidate bool
	move         bool // it nominates the session's next path
	controlling  bool // the role the request claimed
}

// pair is a candidate pair and the TCP connection its checks use. Owned by
// the agent loop.
type pair struct {
	local, remote candidate.Candidate // local is the base the check is sent from
	priority      uint64
	state         pairState
	pc            *pconn
	attempt       uint64             // generation of connect attempts; stale results are dropped
	cancel        context.CancelFunc // stops an in-flight connect or punch
	deadline      time.Time          // when the in-progress check fails
	tx            *transaction
	nominated     bool
	triggered     bool // queued as a triggered check
	rechecks      int  // checks sent for a standard controlling peer to nominate on
	rtt           time.Duration
	validAt       time.Time // when a check on it first succeeded
	started       time.Time // when its current check started
	firstTry      time.Time // when its first check started
	retries       int       // relayed pairs: attempts after a failure
	punchAttempts int       // the round of SYNs that opened its connection (tcp-so), 0 if unknown
	notBefore     time.Time // a pair tried again: the next attempt's earliest start
	err           error
	// viaPeerRelay: the remote is peer-reflexive at the address of one of
	// the peer's relays: the peer's relayed connection to our candidate,
	// a relayed path although neither candidate says so.
	viaPeerRelay bool
}

func (p *pair) foundation() string {
	return candidate.Pair{Local: p.local, Remote: p.remote}.Foundation()
}

func (p *pair) key() pairKey {
	return pairKey{local: endpointKey(p.local), remote: endpointKey(p.remote)}
}

type endpoint struct {
	addr netip.AddrPort
	tcp  candidate.TCPType
	// relayed: a relayed candidate may share its address with a host one
	// (a relay on this host): they are different paths.
	relayed bool
}

type pairKey struct{ local, remote endpoint }

// endpointKey identifies where a candidate's connections come from or go
// to. An active candidate has no fixed port (RFC 6544 §4.5), so only its IP
// counts, except for a peer-reflexive one: it was learned from a
// connection's exact source.
func endpointKey(c candidate.Candidate) endpoint {
	addr := c.Addr
	if c.TCPType == candidate.Active && c.Type != candidate.PeerReflexive {
		addr = netip.AddrPortFrom(addr.Addr(), 0)
	}
	return endpoint{addr: addr, tcp: c.TCPType, relayed: c.Type == candidate.Relay}
}

// checklist holds the pairs in priority order and the triggered-check queue.
type checklist struct {
	pairs     []*pair // highest priority first
	triggered []*pair // FIFO
	byKey     map[pairKey]*pair
}

// add inserts p unless a pair with the same key exists; it returns the
// pair in the list.
func (cl *checklist) add(p *pair, controlling bool) (*pair, bool) {
	if cl.byKey == nil {
		cl.byKey = map[pairKey]*pair{}
	}
	if old, ok := cl.byKey[p.key()]; ok {
		return old, false
	}
	p.priority = candidate.Pair{Local: p.local, Remote: p.remote}.Priority(controlling)
	p.state = stateFrozen
	if !cl.foundationActive(p) {
		p.state = stateWaiting
	}
	cl.byKey[p.key()] = p
	i, _ := slices.BinarySearchFunc(cl.pairs, p, func(a, b *pair) int {
		switch {
		case a.priority > b.priority:
			return -1
		case a.priority < b.priority:
			return 1
		}
		return 0
	})
	// insert after equal priorities so insertion order breaks ties
	for i < len(cl.pairs) && cl.pairs[i].priority == p.priority {
		i++
	}
	cl.pairs = slices.Insert(cl.pairs, i, p)
	return p, true
}

// foundationActive: a pair with p's foundation is already waiting or in
// progress, so p starts frozen (RFC 8445 §6.1.2.6).
func (cl *checklist) foundationActive(p *pair) bool {
	f := p.foundation()
	for _, q := range cl.pairs {
		if (q.state == stateWaiting || q.state == stateInProgress) && q.foundation() == f {
			return true
		}
	}
	return false
}

// unfreeze moves frozen pairs with p's foundation to waiting: after a
// success all of them (RFC 8445 §7.2.5.3.3), after a failure the best one.
func (cl *checklist) unfreeze(p *pair, all bool) {
	f := p.foundation()
	for _, q := range cl.pairs {
		if q.state == stateFrozen && q.foundation() == f {
			q.state = stateWaiting
			if !all {
				return
			}
		}
	}
}

// reprioritize recomputes pair priorities after a role change.
func (cl *checklist) reprioritize(controlling bool) {
	for _, p := range cl.pairs {
		p.priority = candidate.Pair{Local: p.local, Remote: p.remote}.Priority(controlling)
	}
	slices.SortStableFunc(cl.pairs, func(a, b *pair) int {
		switch {
		case a.priority > b.priority:
			return -1
		case a.priority < b.priority:
			return 1
		}
		return 0
	})
}

// trigger queues p for a triggered check (RFC 8445 §7.3.1.4).
func (cl *checklist) trigger(p *pair) {
	if p.triggered {
		return
	}
	p.triggered = true
	if p.state != stateInProgress {
		p.state = stateWaiting
	}
	cl.triggered = append(cl.triggered, p)
}

// nextTriggered takes the oldest triggered check that may start now
// (RFC 8445 §7.3.1.4); pairs for which hold returns true wait.
func (cl *checklist) nextTriggered(hold func(*pair) bool) *pair {
	cl.triggered = slices.DeleteFunc(cl.triggered, func(p *pair) bool {
		if p.state != stateWaiting { // checked or failed meanwhile
			p.triggered = false
			return true
		}
		return false
	})
	for i, p := range cl.triggered {
		if !hold(p) {
			cl.triggered = slices.Delete(cl.triggered, i, i+1)
			p.triggered = false
			return p
		}
	}
	return nil
}

// next picks the pair whose ordinary check starts at this Ta tick: the
// highest-priority waiting pair, else the highest-priority frozen pair is
// unfrozen and picked (RFC 8445 §6.1.4.2). Pairs for which hold returns
// true are passed over for now; triggered pairs wait for nextTriggered.
func (cl *checklist) next(hold func(*pair) bool) *pair {
	for _, p := range cl.pairs {
		if p.state == stateWaiting && !p.triggered && !hold(p) {
			return p
		}
	}
	for _, p := range cl.pairs {
		if p.state == stateFrozen && !hold(p) {
			p.state = stateWaiting
			return p
		}
	}
	return nil
}

// pending reports whether any pair may still succeed.
func (cl *checklist) pending() bool {
	for _, p := range cl.pairs {
		if p.state != stateSucceeded && p.state != stateFailed {
			return true
		}
	}
	return false
}

// inProgress reports a check under way.
func (cl *checklist) inProgress() bool {
	for _, p := range cl.pairs {
		if p.state == stateInProgress {
			return true
		}
	}
	return false
}

// bestValid is the highest-priority succeeded pair.
func (cl *checklist) bestValid() *pair {
	for _, p := range cl.pairs {
		if p.state == stateSucceeded {
			return p
		}
	}
	return nil
}

// higherPending reports a pair above p that may still succeed.
func (cl *checklist) higherPending(p *pair) bool {
	for _, q := range cl.pairs {
		if q == p {
			return false
		}
		if q.state != stateSucceeded && q.state != stateFailed {
			return true
		}
	}
	return false
}

// failures lists why pairs failed, highest priority first.
func (cl *checklist) failures() []*CheckError {
	var out []*CheckError
	for _, p := range cl.pairs {
		if p.state == stateFailed && p.err != nil {
			out = append(out, &CheckError{Local: p.local, Remote: p.remote, Err: p.err})
		}
	}
	return out
}
