package agent

import (
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/candidate"
)

// PairStats describes one candidate pair.
type PairStats struct {
	Local, Remote candidate.Candidate
	State         string // frozen, waiting, in-progress, succeeded, failed
	Priority      uint64
	Nominated     bool
	Selected      bool
	RTT           time.Duration // of the last successful check
	// Attempts counts the connect attempts (SYN exchanges) of the punch
	// that opened a tcp-so pair's connection: 1 is the first; 0 when
	// unknown or not a punch.
	Attempts      int
	BytesSent     uint64 // application bytes
	BytesReceived uint64
	Err           string // why the pair failed
}

// Stats is a snapshot of the agent.
type Stats struct {
	State            State
	Role             Role
	LocalCandidates  []candidate.Candidate
	RemoteCandidates []candidate.Candidate
	Pairs            []PairStats // highest priority first
	Selected         *PairStats
	// Checks counts the connectivity checks this agent sent (consent
	// checks not included); RoleConflicts the 487 role conflicts it sent
	// or received (RFC 8445 §7.3.1.1), RoleSwitches the role changes they
	// caused.
	Checks, RoleConflicts, RoleSwitches int
	// LocalNAT and RemoteNAT are the NAT classes (natcheck's text form),
	// empty when not measured or not received.
	LocalNAT, RemoteNAT string
	// Relays are the TURN allocations made, in order.
	Relays []RelayStats
	// Session describes the Conn's session once selected in session mode
	// (icetcp-session): its moves and the bytes per path; nil otherwise.
	Session *SessionStats
}

// RelayStats describes one TURN allocation.
type RelayStats struct {
	// Server is the TURN server's URI as configured.
	Server string
	// Proxy is the proxy the server was reached through (Config.Proxy;
	// its URL without the password), empty when reached directly.
	Proxy string
	// Relayed is the relayed transport address; Mapped the address the
	// server saw us from (through a proxy: the proxy's).
	Relayed, Mapped netip.AddrPort
	// Lost says why the allocation ended before a pair was selected, if
	// it did.
	Lost string
}

func (rl *relay) stats() RelayStats {
	s := RelayStats{Server: rl.server.URI, Proxy: rl.proxy, Relayed: rl.passive.Addr, Mapped: rl.passive.Related}
	if rl.lost != nil {
		s.Lost = rl.lost.Error()
	}
	return s
}

func (p *pair) stats() PairStats {
	s := PairStats{
		Local: p.local, Remote: p.remote, State: p.state.String(), Priority: p.priority,
		Nominated: p.nominated, RTT: p.rtt, Attempts: p.punchAttempts,
	}
	if p.pc != nil {
		s.BytesSent = p.pc.bytesOut.Load()
		s.BytesReceived = p.pc.bytesIn.Load()
	}
	if p.err != nil {
		s.Err = p.err.Error()
	}
	return s
}

// snapshot builds Stats; it runs on the agent loop.
func (a *Agent) snapshot() Stats {
	s := Stats{
		State: a.state, Role: a.currentRole(), Checks: a.count.checks, RoleConflicts: a.count.conflicts, RoleSwitches: a.count.switches,
		LocalCandidates:  append([]candidate.Candidate(nil), a.g.locals...),
		RemoteCandidates: append([]candidate.Candidate(nil), a.peer.cands...),
	}
	if a.nat.haveLocal {
		s.LocalNAT = a.nat.local.String()
	}
	if a.nat.haveRemote {
		s.RemoteNAT = a.nat.remote.String()
	}
	for _, rl := range a.g.relays {
		s.Relays = append(s.Relays, rl.stats())
	}
	s.Session = a.sessionStats()
	for _, p := range a.cl.pairs {
		ps := p.stats()
		if p == a.sel.pair {
			ps.Selected = true
			sel := ps
			s.Selected = &sel
		}
		s.Pairs = append(s.Pairs, ps)
	}
	return s
}
