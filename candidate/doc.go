// Package candidate holds the ICE-TCP candidate value and the pure rules
// around it: priorities, foundations, the SDP "candidate:" grammar and
// candidate pairing. It opens no sockets and knows nothing about the agent,
// so every rule here is a plain function that table tests and fuzzing reach.
//
// What it implements:
//
//   - RFC 6544 §4.2: the TCP local preference, 2^13*direction-pref + other-pref,
//     with the direction table for host/relay (active 6, passive 4, S-O 2) and
//     for server-reflexive/peer-reflexive (S-O 6, active 4, passive 2).
//     See LocalPreference and Priority.
//   - RFC 8445 §5.1.2: the candidate priority formula
//     2^24*type-pref + 2^8*local-pref + (256 - component). The type
//     preferences are the §5.1.2.2 UDP values minus a TCP offset of 27, the
//     same choice pion/ice makes, so a UDP candidate of the same type still
//     wins when a peer offers both. See TypePreference.
//   - RFC 8445 §5.1.1.3: foundations. Candidates of the same type, base IP,
//     server IP and transport share a foundation. See Foundation.
//   - RFC 6544 §4.5: the SDP candidate-attribute with the "tcptype"
//     extension; active candidates carry the discard port 9 on the wire.
//     See Parse and Candidate.Marshal.
//   - RFC 6544 §6.2: which TCP candidates may be paired (active↔passive,
//     passive↔active, S-O↔S-O), and that pairs whose local candidate is
//     passive are pruned because a passive candidate never initiates a check.
//     See CanPair and Prune.
//   - RFC 8445 §6.1.2.3: pair priority. See PairPriority.
//   - RFC 8445 §6.1.2.4: replacing reflexive local candidates by their base
//     and pruning redundant pairs. See Base and Prune.
//
// A Candidate is an immutable value: copy it freely, compare it with Equal.
// TCPType has pion/ice's values, so ice.TCPType(t) converts either way.
package candidate
