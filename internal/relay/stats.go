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
	TotalQuota          uint64 // Allocate over MaxAllocations (486)
	Permissions         uint64 // a CreatePermission peer IP over MaxPermissions (403)
	PeerForbidden       uint64 // CreatePermission/Connect/inbound peer refused by the peer policy or the allocation's permissions
	PerSource           uint64 // connections over MaxConnsPerSource, closed at once
	MaxConns            uint64 // connections over MaxConns, closed at once
	FirstMessageTimeout uint64 // no complete STUN message within FirstMessageTimeout
	BadFirstMessage     uint64 // a first message that is not STUN, longer than can be valid, or a failed TLS handshake
	StaleNonce          uint64 // an authenticated request whose NONCE is not good on its connection (438: stale, replayed, another connection's)
}

// counters is the live form of Stats.
type counters struct {
	allocations, allocationsTotal atomic.Int64
	relayed, relayedTotal         atomic.Int64
	bytesToPeer, bytesToClient    atomic.Uint64

	auth, quota, totalQuota, permissions, peer  atomic.Uint64
	perSource, maxConns, firstTimeout, badFirst atomic.Uint64
	staleNonce                                  atomic.Uint64
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
			TotalQuota:          c.totalQuota.Load(),
			Permissions:         c.permissions.Load(),
			PeerForbidden:       c.peer.Load(),
			PerSource:           c.perSource.Load(),
			MaxConns:            c.maxConns.Load(),
			FirstMessageTimeout: c.firstTimeout.Load(),
			BadFirstMessage:     c.badFirst.Load(),
			StaleNonce:          c.staleNonce.Load(),
		},
	}
}

// Stats returns the current counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }
