package agent

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icetcp/icetcp/candidate"
)

// What an Agent holds, in the parts it hands to owned types. Those marked
// "owned by the loop" are touched by Agent.run's goroutine only: no
// locks.

// seams are where the agent meets the world, replaceable in tests.
type seams struct {
	net      Network      // sockets (Config.Network; the host's TCP stack by default)
	allocate allocateFunc // TURN allocations (nil: internal/turn, turnAllocate)
	natCheck natCheckFunc // the NAT measurement (nil: internal/natcheck, hostNATCheck)
}

// credentials are ours, fixed at New (RFC 8445 §5.3, §6.1.1).
type credentials struct {
	ufrag, pwd string
	tiebreaker uint64
}

// lifecycle is what Gather, Connect and Close share with the loop.
type lifecycle struct {
	closing    chan struct{}         // closed by Close
	loopDone   chan struct{}         // closed when the loop ended
	result     chan connectResult    // Connect's answer, once
	final      atomic.Pointer[Stats] // the last snapshot once the loop ended
	gatherErr  error
	closeOnce  sync.Once
	gatherOnce sync.Once
	started    atomic.Bool // gathering started: the loop runs or ran
	connecting atomic.Bool // Connect was called
}

// roleState (owned by the loop) is our ICE role (RFC 8445 §6.1.1, §7.3.1.1).
type roleState struct {
	controlling bool
	known       bool // decided (Config.Role, the credentials or a check)
}

// gatherer is what gathering produced (RFC 6544 §5): our candidates and
// the sockets, STUN connections and allocations behind them.
type gatherer struct {
	locals    []candidate.Candidate
	listeners []*listener
	// family is an address of the family of our first host candidate;
	// muxOn (below) says the Mux's passive candidate (Mux.cand, kept by
	// the Mux, once for all its agents) is ours. Both are set by gather before the loop starts.
	family netip.Addr
	// pending counts STUN queries and allocations still running; our
	// end-of-candidates (eocSent) goes out when it reaches zero.
	pending   int
	stunConns []net.Conn    // kept open: they hold the NAT's server-reflexive mappings
	stunStop  chan struct{} // closed by stopSTUN: keepalive goroutines return (nil until one runs)
	relays    []*relay

	muxOn, eocSent, stunStopped bool
}

// hasLocal reports a local candidate at c's address, of its type and
// TCP type.
func (g *gatherer) hasLocal(c candidate.Candidate) bool {
	for _, l := range g.locals {
		if l.Addr == c.Addr && l.TCPType == c.TCPType && l.Type == c.Type {
			return true
		}
	}
	return false
}

// relayOf finds the allocation behind a local relayed candidate.
func (g *gatherer) relayOf(c candidate.Candidate) *relay {
	for _, rl := range g.relays {
		if rl.active.Addr == c.Addr || rl.passive.Addr == c.Addr {
			return rl
		}
	}
	return nil
}

// peerState is what the peer told us over signaling.
type peerState struct {
	ufrag    string // "" until its credentials arrive
	cands    []candidate.Candidate
	eocAt    time.Time // when eoc came
	features features  // the extensions it offers
	eoc      bool      // its end-of-candidates arrived (or nothing more will come)
	done     bool      // its checks-done arrived
}

// selection is nomination and its outcome (RFC 8445 §8).
type selection struct {
	pair *pair // selected
	conn *Conn // handed to Connect's caller
	// released: listeners, signaling and unused relays are closed (the
	// peer checked the selected connection, or releaseAt passed).
	released  bool
	releaseAt time.Time
	// nominating is the pair our (controlling) nomination is on.
	nominating *pair
	// committed is the connection on which we (controlled) answered a
	// USE-CANDIDATE check: the peer selects it on our answer, so it is
	// ours too, whatever comes after. It is selected at once, or when
	// the peer's credentials arrive if the check overtook them; if it is
	// lost before that, both sides fail.
	committed  *pconn
	firstValid time.Time // when the first pair succeeded
	selectedAt time.Time
}

// committedElsewhere reports that a nomination on pc cannot be confirmed:
// we selected, or committed to, another connection.
func (s *selection) committedElsewhere(pc *pconn) bool {
	return (s.pair != nil && pc != s.pair.pc) || (s.committed != nil && pc != s.committed)
}

// signalState is our side of the signaling channel.
type signalState struct {
	out    *outbox
	cancel context.CancelFunc // stops the signaling goroutines
	// credsOut: the channel took our credentials. No check leaves
	// before: a peer that answers one may select on our nomination and
	// must then learn our credentials, even if the application closes the
	// channel as soon as Connect returns.
	credsOut bool
	doneSent bool // our checks-done is out
}

// counters are what Stats reports of the checks.
type counters struct {
	checks    int // Binding requests sent as checks (consent not counted)
	conflicts int // 487 role conflicts sent or received
	switches  int // role switches after a conflict
	pongs     int // punch pings answered; bounded so a peer cannot flood our outbox
}
