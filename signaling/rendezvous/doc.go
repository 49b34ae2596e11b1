// Package rendezvous is the signaling server of icetcp: it pairs two
// WebSocket clients (RFC 6455) in a named room and relays their signaling
// messages to each other, and it is built to face the open internet. It
// owns the Server (ServeHTTP, Serve), the room table, the admission limits
// and their statistics (Stats, exported by icetcp serve as Prometheus
// metrics), and join tokens (MintToken, ParseToken). The messages and the
// pure parts of the join are package signaling's; the client is package
// signaling/wsclient.
//
// # Rendezvous protocol
//
// A WebSocket client first sends {"v":1,"type":"join","room":"NAME"}; the
// server answers {"v":1,"type":"joined","room":"NAME","members":N} or
// {"v":1,"type":"error","code":"room-full","reason":"..."} and closes
// with status 1008 and the code as reason. After joining, every agent
// message is validated by the server (signaling.Decode) and relayed
// verbatim to the other member, or queued until it arrives; an invalid
// one is answered with an error message and the connection stays. When a
// member leaves, the other receives {"v":1,"type":"peer-left"}, and the
// room waits for a new member. join and joined are server protocol only
// (signaling.Control) and never reach a Channel's user.
//
// Room names are 1..128 characters of [A-Za-z0-9._-] (signaling.ValidRoom).
// A room whose name starts with signaling.KeyRoomPrefix belongs to an
// Ed25519 public key (signaling.RoomForKey) and is joined only with a
// "proof": the key's signature over a challenge the server made for this
// connection alone, sent in the upgrade answer's Icetcp-Join-Challenge
// header (signaling.ChallengeHeader; wsclient.Dialer.RoomKey signs it). A
// squatter who learned the name, a member of another key, or a join
// captured on another connection is refused with "room-proof", and never
// takes a place in the room. The icetcp CLI joins the room of its secret's
// key (secure.RoomKey), and the two peers also prove the secret to
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
//     secret, in the manner of TURN REST credentials
//     (draft-uberti-behave-turn-rest-00). Others get HTTP 401 and code
//     "unauthorized".
//
// Refusals are counted by reason (Server.Stats, the Reason* values) and
// logged at most once per reason per RefusalLogInterval with the count
// since the last line.
//
// Behind a proxy or load balancer every connection comes from it: with
// TrustedProxies set, the client's address is taken from the Forwarded or
// X-Forwarded-For header of those proxies (and of nobody else), and the
// per-source limits count it; Serve then counts a trusted proxy's
// connections in all only (internal/trustproxy).
//
// # Relays announced
//
// With Relays set, every joined answer names TURN relays with credentials
// minted for that member (TURN REST, coturn's --use-auth-secret format:
// "<expiry>:<user>" and an HMAC of it under the relays' shared secret;
// the user part is the member's source, or its join token's subject), so
// that a client configured with nothing but the rendezvous still has a
// fallback, and never holds the secret. Any relay that shares the secret
// takes them: a fleet of icetcp serve nodes, coturn. Anyone who can join
// a room gets credentials: require join tokens on a rendezvous whose
// relays are not for everyone.
//
// # Cluster
//
// With Server.Cluster (NewCluster), several rendezvous nodes share their
// rooms through NATS, an existing engine (github.com/nats-io/nats.go),
// so that two peers a load balancer sends to two nodes still meet:
//
//   - who is in a room is a record in a JetStream key-value bucket,
//     changed only by compare-and-set on its revision (JetStream's Raft
//     orders them): of three members racing through three nodes, exactly
//     two get in, and the third is refused "room-full";
//   - messages go from the sender's node to the node of the peer the
//     record names, on that node's subject, in order; a message never goes
//     to a member that is not the sender's peer in the record (a node
//     checks the sender against the peer it knows before delivering), so
//     no message of a room reaches a third party;
//   - a node that dies takes only its own members: the nodes of their
//     peers ask it about them (a NATS request to its liveness subject;
//     a dead node has no subscriber and NATS answers "no responders" at
//     once, no timer decides), tell their members that the peer left
//     (after whatever the peer sent before it went: the peer-left goes
//     the messages' way, through NATS), and
//     take the dead members off the records, so their clients can join
//     again through another node. A node that answers late is taken to
//     be alive (a room-full refusal rather than a third member). A process
//     that dies is gone at once (its host closes its connection); a host
//     that vanishes without a word is gone when NATS drops its connection
//     after its missed pings (ping_interval, ping_max);
//   - key rooms, tokens and relays work as on one node: the proof is
//     checked by the node the client reached, over that connection's
//     challenge.
//
// Limits in a cluster: the room of two is global (the record). Rooms and
// rooms per source (MaxRooms, MaxRoomsPerSource) are counted per node, on
// the node through which a room was opened, while its opener is in it (a
// global count would need every join of the cluster to take its turn on
// one record); connections in all and per source are per node, as they
// are counted at each node's accept; the queue for an absent peer is the
// sender's node's. A deployment of N nodes therefore admits up to N times
// the per-node room limits. The bucket keeps records in memory
// (replicated with ClusterConfig.Replicas), and forgets a record 15
// minutes after its last write: live nodes rewrite theirs.
//
// A plain room name is not a credential: whoever knows it can take the
// room. A key room is (see above); the icetcp CLI's --secret uses one and
// also authenticates the peer end to end, so a squatter neither gets in
// nor reads anything. Over ws:// the messages, including the ICE ufrag and
// password, cross the network in clear; serve wss:// (Serve with a TLS
// config, or http.Server.ServeTLS; wsclient.Dialer.TLSConfig on the
// client) where that matters.
package rendezvous
