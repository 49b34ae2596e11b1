// Package stuntcp speaks plain STUN over TCP: the server-reflexive gathering
// path of RFC 6544 §5.2, where an agent sends a Binding request from the same
// local port as its passive or S-O candidate and keeps the connection open to
// hold its NAT mapping, and the server side of NAT behaviour discovery over
// TCP (RFC 5780, used by internal/natcheck).
//
// Over TCP a STUN message is delimited by its own header: 20 bytes whose
// length field gives the size of the attributes that follow (RFC 5389 §6,
// §7.2.2). There is no RFC 4571 length prefix here; that framing is only
// for the connections between ICE agents (RFC 6544 §7.1, internal/framing).
//
// [ReadMessage] reads one message from a stream; [Binding] and [Query] are
// the client transaction (RFC 5389 §7.2.2: over a reliable transport the
// request is sent once, with no retransmission, and the client waits for
// the response). [Server] answers Binding requests with XOR-MAPPED-ADDRESS
// (RFC 5389 §15.2), RESPONSE-ORIGIN (RFC 5780 §7.3), SOFTWARE and
// FINGERPRINT (RFC 5389 §15.10, §15.5). Requests with comprehension-required
// attributes the server does not implement, CHANGE-REQUEST (RFC 5780 §7.2)
// among them, get a 420 error response listing them (RFC 5389 §7.3.1);
// other methods get 400. Message encoding is pion/stun's.
//
// # RFC 5780 over TCP
//
// With Server.Primary and Server.Alternate set (IP1:P1 and IP2:P2, four
// listeners from [ListenRFC5780]) responses carry OTHER-ADDRESS (§7.4): the
// address differing in both IP and port from the one the client reached.
// That is all the mapping test of §4.3 needs. §3 restricts the filtering
// test (CHANGE-REQUEST) and the binding lifetime test to UDP; this server
// does not pretend otherwise and answers CHANGE-REQUEST with 420.
//
// # SYN-PROBE (an icetcp extension)
//
// What a NAT does with an unsolicited inbound SYN (RST, silence, or pass it
// on; RFC 5382 §5 REQ-4/REQ-5) decides how TCP simultaneous open behaves,
// and only an outside host can see it. A Binding request may carry the
// attribute SYN-PROBE, type 0xC4C7 ([AttrSYNProbe]): comprehension-optional,
// so other servers ignore it, from the expert-review part of that range
// (0xC000-0xFFFF, RFC 8489 §18.3) and unassigned in IANA's STUN Attributes
// registry (0xC061-0xFFFF is free there). The server then connects from
// the IP the client did not reach (so the 5-tuple is new to the client's
// NAT, and no filter opened by the client's own traffic lets it in) to the
// request's source address, with a 1 s timeout, and puts the outcome in
// the response's SYN-PROBE: refused (RST), timed out, connected (closed at
// once, without a byte), unreachable, or declined with a reason. Limits:
// the target is always the connection's own source, one probe per
// connection, a token bucket per source, a server-wide concurrency cap
// (see synprobe_server.go).
//
// # Floods
//
// A connection must bring its first complete request within
// FirstMessageTimeout (5 s); at most MaxConnsPerIP (32) connections per
// source IPv4 address or IPv6 /64 and MaxConns (10,000) in all are open;
// beyond them connections are closed at accept with RST. One source holding
// thousands of idle connections therefore cannot starve the others.
// Refusals are counted by reason ([Server.Stats]) and logged at most once
// per reason per 10 s, with the count.
package stuntcp
