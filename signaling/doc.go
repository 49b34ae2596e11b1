// Package signaling is what two ICE agents exchange before and during
// connectivity checks, and the interface they exchange it over: ICE
// credentials (RFC 8445 §5.3: ufrag, pwd, and the role tie-breaker of
// §6.1.1), trickled candidate lines (RFC 8838 style trickle, with the TCP
// candidate grammar of RFC 6544 §4.5 left opaque here), end-of-candidates,
// bye, the sender's NAT class, the key exchange and key confirmation of
// two peers of a code or a secret (types pake and confirm), checks-done,
// and punch ping/pong, with which the controlling agent measures the
// signaling round trip to size how long a working relayed pair waits for
// a direct one. Simultaneous opens need no start signal: both sides punch
// a tcp-so pair as soon as it exists; "go", the synchronised start of
// earlier agents, is still accepted and ignored.
//
// The package does not know about the agent (a candidate is an opaque
// string) nor about any transport. It owns
//
//   - the versioned JSON message schema: Message, Encode, Decode, the
//     message types and their validation;
//   - the Channel interface the agent takes as its transport, and the
//     errors a Channel and the format share (ErrClosed, ErrPeerLeft,
//     ErrInvalidMessage, ...);
//   - what a rendezvous client and server both need and that is pure: the
//     join protocol's messages (Control), the wire codes of refusals and
//     their sentinels (CodeOf, ErrorOf), room names (ValidRoom) and the
//     rooms that belong to a key, with their join proofs (RoomForKey,
//     ProveJoin, VerifyJoin).
//
// It imports no network library: the agent, which needs only the format,
// links no WebSocket code. The rest of the house:
//
//   - signaling/wsclient: a Channel over a WebSocket to a rendezvous
//     (Dial), through an HTTP or SOCKS5 proxy when asked;
//   - signaling/rendezvous: the server that pairs two clients in a named
//     room and relays their messages, with its limits and join tokens; its
//     package documentation describes the rendezvous protocol;
//   - signaling/sdp: the same exchange as SDP offer/answer lines;
//   - signaling/signalingtest: an in-memory Channel pair for tests.
//
// # Wire format
//
// One JSON object per message (over the rendezvous, one WebSocket text
// message), at most MaxMessageSize bytes:
//
//	{"v":1,"type":"credentials","ufrag":"abcd","pwd":"0123456789abcdefghijkl","tiebreaker":"42","role":"controlling"}
//	{"v":1,"type":"candidate","candidate":"candidate:1 1 TCP 2128609279 10.0.0.1 9 typ host tcptype active"}
//	{"v":1,"type":"punch","punch":{"seq":1,"phase":"ping"}}
//
// The tie-breaker is a JSON string because it is a full 64-bit value and
// JavaScript peers would lose precision on a JSON number. Unknown fields are
// ignored so that a later revision of the same version can add optional
// fields; anything that changes meaning increments Version. Every string
// field is bounded and must be UTF-8, so a decoded message always encodes
// again, to the same message.
//
// Agents send credentials, candidate, end-of-candidates, bye, punch, nat,
// pake, confirm and checks-done. Only the rendezvous (or an in-memory Channel)
// produces peer-left and error ({"v":1,"type":"error","code":"queue-full",
// "reason":"..."}): the rendezvous refuses to relay them from an agent,
// and so do wsclient's and signalingtest's Channels (ErrRendezvousOnly).
// The join protocol's own types, join and joined, travel as Control
// messages between a client and the rendezvous and never reach a
// Channel's user; Decode refuses them.
//
// An error's code is a stable wire value (the Code* constants), and each
// has a sentinel error (ErrRoomFull for "room-full", ...): the rendezvous
// sends CodeOf(err), a client turns the code back with ErrorOf, so
// errors.Is works across the wire. The text in reason is for people.
package signaling
