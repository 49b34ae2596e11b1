// Package stuntcp speaks plain STUN over TCP: the server-reflexive gathering
// path of RFC 6544 §5.2, where an agent sends a Binding request from the same
// local port as its passive or S-O candidate and keeps the connection open to
// hold its NAT mapping.
//
// Over TCP a STUN message is delimited by its own header: 20 bytes whose
// length field gives the size of the attributes that follow (RFC 5389 §6,
// §7.2.2). There is no RFC 4571 length prefix here; that framing is only
// for the connections between ICE agents (RFC 6544 §7.1, internal/framing).
//
// [ReadMessage] reads one message from a stream, [Binding] is the client
// transaction (RFC 5389 §7.2.2: over a reliable transport the request is sent
// once, with no retransmission, and the client waits for the response), and
// [Server] answers Binding requests with XOR-MAPPED-ADDRESS (RFC 5389 §15.2),
// RESPONSE-ORIGIN (RFC 5780 §7.3), SOFTWARE and FINGERPRINT (RFC 5389 §15.10,
// §15.5). Requests with comprehension-required attributes the server does not
// implement, CHANGE-REQUEST (RFC 5780 §7.2) among them, get a 420 error
// response listing them (RFC 5389 §7.3.1); other methods get 400.
// Message encoding is pion/stun's.
package stuntcp
