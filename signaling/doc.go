// Package signaling carries what two ICE agents must exchange before and
// during connectivity checks: ICE credentials (RFC 8445 §5.3: ufrag, pwd, and
// the role tie-breaker of §6.1.1), trickled candidate lines (RFC 8838 style
// trickle, with the TCP candidate grammar of RFC 6544 §4.5 left opaque here),
// end-of-candidates, bye, and the punch-timing exchange that synchronises
// tcp-so simultaneous opens (DCUtR style: ping/pong measures the round trip,
// "go" carries RTT/2).
//
// The package does not know about the agent: a candidate is an opaque string.
// It offers
//
//   - the versioned JSON message schema (Message, Encode, Decode);
//   - the Channel interface the agent takes as its transport;
//   - a WebSocket client (Dial) and the rendezvous Server that pairs two
//     clients in a named room and relays their messages;
//   - an in-memory pair for tests in package signalingtest.
//
// # Wire format
//
// One JSON object per WebSocket text message, at most MaxMessageSize bytes:
//
//	{"v":1,"type":"credentials","ufrag":"abcd","pwd":"0123456789abcdefghijkl","tiebreaker":"42","role":"controlling"}
//	{"v":1,"type":"candidate","candidate":"candidate:1 1 TCP 2128609279 10.0.0.1 9 typ host tcptype active"}
//	{"v":1,"type":"punch","punch":{"seq":3,"phase":"go","delay_ms":20}}
//
// The tie-breaker is a JSON string because it is a full 64-bit value and
// JavaScript peers would lose precision on a JSON number. Unknown fields are
// ignored so that a later revision of the same version can add optional
// fields; anything that changes meaning increments Version.
//
// # Rendezvous protocol
//
// A WebSocket client first sends {"v":1,"type":"join","room":"NAME"}; the
// server answers {"v":1,"type":"joined","room":"NAME","members":N} or
// {"v":1,"type":"error","code":"room-full","reason":"..."} and closes. After
// joining, every agent message is validated by the server and relayed
// verbatim to the other member, or queued until it arrives. When a member
// leaves, the other receives {"v":1,"type":"peer-left"}, and the room waits
// for a new member. join and joined are server protocol only and never
// reach a Channel's user.
//
// A room whose name starts with KeyRoomPrefix belongs to an Ed25519 public
// key (RoomForKey) and is joined only with a "proof": the key's signature
// over a challenge the server made for this connection alone, sent in the
// upgrade answer's Icetcp-Join-Challenge header (Dialer.RoomKey). A
// squatter who learned the name, a member of another key, or a join
// captured on another connection is refused with "room-proof", and never
// takes a place in the room. The icetcp CLI joins the room of its secret's
// key (internal/secure.RoomKey), and the two peers also prove the secret to
// each other (type confirm) before they send their credentials.
//
// # Admission and limits
//
// A rendezvous on the open internet must not be one client's to take
// (issue 8: one client opened 10,000 rooms in 3 s and refused everyone
// else; issue 14: 3,000 idle connections that each sent a plain GET held
// 3,000 descriptors for good). The Server therefore
//
//   - under Serve, counts TCP connections at accept, before the upgrade,
//     per source and in all (internal/limits), resets what is over, gives
//     the request JoinTimeout to arrive and closes idle connections; a
//     request that is not a WebSocket upgrade is answered 426 and closed;
//   - caps WebSocket connections overall (MaxConns) and per source address
//     (MaxConnsPerSource; an IPv4 address or an IPv6 /64), refusing the
//     upgrade with HTTP 503 or 429 and an error message body;
//   - caps rooms overall (MaxRooms) and per creating source
//     (MaxRoomsPerSource), refusing the join with "too-many-rooms";
//   - gives a connection JoinTimeout to send its join (close reason
//     "join-timeout"), bounds every queue, and closes rooms idle for
//     RoomIdleTimeout ("room-expired");
//   - with TokenKey set, admits only requests carrying
//     "Authorization: Bearer <token>" with a token from MintToken: an HMAC-
//     SHA256 over an expiry and an optional subject under the server's
//     secret, in the manner of TURN REST credentials. Others get HTTP 401
//     and code "unauthorized".
//
// Refusals are counted by reason (Server.Stats) and logged at most once per
// reason per RefusalLogInterval with the count since the last line.
//
// A plain room name is not a credential: whoever knows it can take the
// room. A key room is (see above); the icetcp CLI's --secret uses one and
// also authenticates the peer end to end, so a squatter neither gets in
// nor reads anything. Over ws:// the messages,
// including the ICE ufrag and password, cross the network in clear; serve
// wss:// (http.Server.ServeTLS; Dialer.TLSConfig on the client) where that
// matters.
package signaling
