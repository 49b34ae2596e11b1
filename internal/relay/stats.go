package relay

import "sync/atomic"

// Stats are the relay's counters, for Prometheus: gauges are "current"
// values, everything else only grows.
type Stats struct {
	Allocations      int64  // current allocations
	AllocationsTotal uint64 // allocations ever made
	Relayed          int64  // TCP connections being relayed now (bound client/peer pairs)
	RelayedTotal     uint64 // TCP connections ever relayed
	BytesToPeer      uint64 // relayed from clients to peers
	BytesToClient    uint64 // relayed from peers to clients
	Refused          Refusals
}

// Refusals counts what the relay turned away, by reason.
type Refusals struct {
	Auth                uint64 // unknown user, wrong password or realm, expired REST username
	Quota               uint64 // Allocate over MaxAllocationsPerUser (486), peer connections over the per-allocation bound
	PeerForbidden       uint64 // CreatePermission/Connect/inbound peer refused by the peer policy
	PerSource           uint64 // connections over MaxConnsPerSource, closed at once
	FirstMessageTimeout uint64 // no complete STUN message within FirstMessageTimeout
	BadFirstMessage     uint64 // a first message that is not STUN (or a failed TLS handshake)
}

// counters is the live form of Stats.
type counters struct {
	allocations, allocationsTotal atomic.Int64
	relayed, relayedTotal         atomic.Int64
	bytesToPeer, bytesToClient    atomic.Uint64

	auth, quota, peer, perSource, firstTimeout, badFirst atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Allocations:      c.allocations.Load(),
		AllocationsTotal: uint64(c.allocationsTotal.Load()),
		Relayed:          c.relayed.Load(),
		RelayedTotal:     uint64(c.relayedTotal.Load()),
		BytesToPeer:      c.bytesToPeer.Load(),
		BytesToClient:    c.bytesToClient.Load(),
		Refused: Refusals{
			Auth:                c.auth.Load(),
			Quota:               c.quota.Load(),
			PeerForbidden:       c.peer.Load(),
			PerSource:           c.perSource.Load(),
			FirstMessageTimeout: c.firstTimeout.Load(),
			BadFirstMessage:     c.badFirst.Load(),
		},
	}
}

// Stats returns the current counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }
