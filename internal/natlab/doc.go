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
//	                               └──── server 198.51.100.10 (rendezvous, STUN)
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
// through their listeners, as two agents do; RunMatrix runs `icetcp connect`
// for every pair of profiles and reports success, paths, connect times in
// round trips and the share of tcp-so punches that connected on the first
// attempt.
package natlab
