// Package natcheck discovers how the NAT in front of this host treats TCP:
// NAT behaviour discovery of RFC 5780 adapted to TCP, for the ICE-TCP agent
// (which sends the compact [Class] to its peer) and for `icetcp natcheck`.
//
// [Check] measures, against a STUN server reached over TCP:
//
//   - The mapping behaviour, RFC 5780 §4.3, with RFC 4787 §4.1's terms
//     (which RFC 5382 §4.1 applies to TCP): from one local port (shared by
//     SO_REUSEADDR/SO_REUSEPORT, see tcpso), a Binding request to the
//     primary address (test I), to the alternate IP with the primary port
//     (test II) and, when those differ, to the alternate IP and port (test
//     III); equal mappings mean endpoint-independent, II = III
//     address-dependent, otherwise address-and-port-dependent. Test I equal
//     to the local address means no NAT. The alternate address comes from
//     OTHER-ADDRESS (RFC 5780 §7.4); without it the mapping is unknown.
//     Every connection stays open until the check ends: closing and
//     reopening a 4-tuple runs into TIME_WAIT, and a NAT may drop or keep
//     a closed connection's mapping.
//   - Port preservation (test I's external port is the local one) and the
//     allocation pattern: five new connections from consecutive local
//     ports, their SYNs 2 ms apart, compared by external port (preserving,
//     sequential with a delta, random; a series whose steps vary a little
//     is a sequential NAT other hosts use too, and its delta the smallest
//     step).
//   - What the NAT does with an unsolicited inbound SYN (on test I's
//     connection, in a second transaction, so that the mapping is known
//     before it ends: [Config.Mapped]): the server's
//     SYN-PROBE (STUN attribute 0xC4C7, an icetcp extension in the
//     comprehension-optional, expert-review range, unassigned at IANA; see
//     internal/stuntcp) connects from the server IP the client did not
//     reach to the client's mapped address. RST means refused (Linux
//     masquerade's answer), silence dropped (RFC 5382 REQ-4 style), a
//     completed handshake passed (no NAT, or endpoint-independent
//     filtering). Check listens on its own port meanwhile, so a passed SYN
//     reaches a listener instead of being answered by our own kernel with
//     an RST that would look like the NAT's.
//
// RFC 5780 §3 leaves the filtering test (CHANGE-REQUEST) and the binding
// lifetime test to UDP; over TCP they do not exist, and Check does not fake
// them. The SYN probe answers the question the filtering test would, for
// the case that matters to ICE-TCP: it comes from an address the host never
// contacted, so a probe that passed a NAT shows endpoint-independent
// filtering (RFC 4787 §5, RFC 5382 §5: anyone reaches a mapped port, also
// a passive candidate's), and one refused or dropped shows filtering by
// endpoint (address-dependent and address-and-port-dependent are not told
// apart). [Result.Filtering] and [Class.Filtering] say which.
//
// [SimultaneousOpenViable] turns two classes into a verdict for tcp-so
// pairs (RFC 6544 §7.2): likely, unlikely, or predicted — a NAT with an
// endpoint-dependent mapping that allocates ports in sequence
// ([Class.NeedsPrediction]) is not hopeless: the port of its next
// connection is the last one seen plus the delta for each connection
// opened since, which the agent announces to the peer (the "sequential"
// NATs of the port-prediction literature). [PassiveReachable] judges a
// connection to a passive candidate's server-reflexive address by the
// filtering behind it. [Class.String] and [ParseClass] are the versioned
// text form that crosses signaling: "v1 mapping=eim port=preserve
// alloc=preserve syn=rst".
package natcheck
