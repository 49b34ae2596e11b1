// Package secure is the end-to-end layer icetcp connect runs over the ICE
// agent's net.Conn: the agent stays a plain transport, the way ICE sits
// under DTLS in WebRTC, and this package sees only a net.Conn.
//
// Two users share a Secret out of band (NewSecret prints one as seven groups
// of four characters to read aloud). From it come, through HKDF-SHA256
// (RFC 5869) under separate labels,
//
//   - RoomKey, an Ed25519 key, whose public key names the rendezvous room
//     both peers join (RoomName, a key room of package signaling: the
//     rendezvous admits only clients that sign their connection's
//     challenge with it);
//   - a key for ConfirmPeer, with which the two peers prove the secret to
//     each other over signaling before either sends its ICE credentials
//     (a nonce-and-MAC key confirmation with HMAC-SHA256); and
//   - a 32-byte pre-shared key for a Noise handshake (Noise Protocol
//     Framework rev. 34, pattern NNpsk0, X25519 / ChaCha20-Poly1305 /
//     SHA-256, implemented by github.com/flynn/noise).
//
// After the handshake the stream is a sequence of records (record.go):
// a 2-byte length and an AEAD-sealed body holding a type byte and the
// payload, at most 65535 bytes on the wire. The stream ends with an
// authenticated end-of-stream record; a transport that ends without one is
// reported as ErrTruncated with the number of bytes that arrived, never as
// io.EOF. CloseWrite sends that record and leaves the transport open, so
// its own liveness checks (ICE consent, RFC 7675) keep running both ways.
//
// # Why a pre-shared key and not a PAKE
//
// A PAKE (CPace, SPAKE2) would allow short, guessable codes because each
// guess then costs an online attempt. No maintained Go PAKE module is
// available to this project, and we invent no cryptography, so the secret
// must carry the entropy itself: a passive observer of a PSK handshake (the
// network path, a TURN relay) can test guesses offline, and so can the
// rendezvous against the room name. Secrets therefore have 130 random bits
// and ParseSecret refuses anything that is not such a code.
//
// # Threat model
//
// The rendezvous server
//   - sees the room name (the room key's public key), the ICE credentials
//     and candidates (so the peers' addresses) and timing; with ws:// so
//     does the network.
//   - cannot find the room of a pair without the secret, and whoever learns
//     it (the rendezvous itself, or the network over ws://) still cannot
//     take it: the rendezvous admits only signatures with the room key over
//     a challenge of the connection's own (issue 14: a squatter in the
//     room used to stop the real pair).
//   - can refuse service or pair a peer with itself or an attacker: the
//     peer then fails the key confirmation before ICE (ConfirmPeer), leaves
//     and joins the room again to wait for the right peer, and reads
//     nothing. It cannot learn the secret from the room's public key, the
//     join proofs or the confirmation's MACs except by searching 2^130
//     candidates.
//
// A TURN relay, or anyone on the path
//   - sees ciphertext, record sizes and timing; can drop, delay, reorder,
//     replay or alter bytes: each of those fails authentication (implicit
//     record counters) or shows up as a truncated stream, never as
//     different data or a clean end.
//   - can record the handshake and test secret guesses offline: hopeless
//     against 130 bits, which is why weak secrets are refused.
//   - gets nothing from a secret that leaks after the session: keys come
//     from ephemeral X25519 (forward secrecy).
//
// Someone who knows the secret is a peer: two peers are authenticated to
// each other only as "holders of the secret", not as individuals. Three
// holders of one secret can race for the room of two. A secret is meant for one
// pair and one session; reuse does not weaken the keys (fresh ephemerals)
// but lets anyone who saw it once take a later room.
//
// Not hidden: that two hosts talk, when, how much (record sizes are the
// application's write sizes up to MaxPayload).
package secure
