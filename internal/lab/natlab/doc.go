// Package natlab builds the NAT lab: real Linux NATs (nftables in network
// namespaces) between two peers and a server, joined by the user-space WAN
// of package delayline, and runs probes and `icetcp connect` trials across
// them.
//
// # Topology
//
//	peer A (10.0.1.2) ─ gateway A ─┐                      ┌─ gateway B ─ peer B (10.0.2.2)
//	                  [carrier A]──┤  delay line: router  ├──[carrier B]
//	                               │  203.0.113.254       │
//	                               └──── server 198.51.100.10 (rendezvous, STUN, TURN)
//
// Each gateway NATs with one Profile (RFC 4787/5382 vocabulary: mapping,
// port preservation, what an unsolicited SYN meets). A nested profile puts a
// carrier-grade NAT (RFC 6598, 100.64.0.0/10) in front of the home gateway.
// The delay line is one router hop by default: it decrements TTLs and
// answers an expired packet with ICMP Time Exceeded (RFC 1812 §5.3.1), so
// low-TTL SYNs behave as on the internet; Config.SameSegment makes it a
// plain segment instead (two NATs on one LAN).
//
// # Probes
//
// ProbeMapping and ProbeTCP check a profile's behaviour; ProbeSimOpen is a
// raw simultaneous open; ProbePunch runs package tcpso's punch on both sides
// through their listeners, as two agents do.
//
// # A busy host
//
// StartLoad runs busy processes beside the lab (MatrixConfig.Load,
// `icetcp lab --load N`): two of them on a two-core machine are "two busy
// loops", what a media server or a laptop in a call looks like to a
// punch. They are stopped with the matrix, and end by themselves when the
// process that started them dies, however it dies. (A cgroup CPU limit on
// the agents would model a throttled container instead; this kernel
// offers the cpu controller only in cgroup v1, so it is not built.)
//
// # The matrix
//
// RunMatrix runs `icetcp connect` for every pair of profiles and reports
// success, paths, connect times in round trips, the NAT classes the agents
// measured and the share of tcp-so punches that connected on the first
// attempt. The server namespace runs `icetcp serve` with a TURN relay (RFC
// 6062 TCP allocations): its own (MatrixConfig.Relay zero; with an RFC 5780
// alternate address, 198.51.100.11, so the agents classify their NATs) or
// coturn, and every connect gets it with --turn; tcp443-only peers reach
// rendezvous, STUN and TURN only through the port-443 aliases. Peers join
// with a fresh --secret per trial (end-to-end encrypted stream) unless
// MatrixConfig.Room asks for --room. With MatrixConfig.Counterfactual every
// trial that ended relayed runs again with --await-direct, so the table
// shows beside the measured time what waiting for the direct checks to
// fail would have cost. Per cell whose sessions started on the relay, the
// table also shows the time to the first byte, the time to the move to a
// direct path and what the relay carried after the direct pair validated.
//
// # Faults
//
// A Stage is a lab with its rendezvous and, in a process of its own, its
// relay, for tests that break things under a running session: Session
// starts connect on both peers with streams checked as they arrive,
// Await waits for an event (a move, a resumption, progress), and
// BlockPeers, RestartNAT and KillRelay cut the direct path, restart a
// NAT (new mappings, its state flushed) and kill the relay.
package natlab
