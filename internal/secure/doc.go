// Package secure is the end-to-end layer icetcp connect runs over the ICE
// agent's net.Conn: the agent stays a plain transport, the way ICE sits
// under DTLS in WebRTC, and this package sees only a net.Conn.
//
// Two users share a Secret out of band (NewSecret prints one as seven groups
// of four characters to read aloud). From it come, through HKDF-SHA256
// (RFC 5869) under separate labels,
//
//   - RoomName: the rendezvous room both peers join, and
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
//   - sees the room name, the ICE credentials and candidates (so the
//     peers' addresses) and timing; with ws:// so does the network.
//   - cannot find the room of a pair without the secret (128-bit name), so
//     a name it does not know cannot be taken; joining other rooms does
//     not disturb the pair.
//   - can refuse service or pair a peer with itself (it relays the ICE
//     credentials): it then completes ICE but fails the Noise handshake, and
//     reads nothing. It cannot learn the secret from the room name except by
//     searching 2^130 candidates.
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
// holders of one secret can race for the room. A secret is meant for one
// pair and one session; reuse does not weaken the keys (fresh ephemerals)
// but lets anyone who saw it once take a later room.
//
// Not hidden: that two hosts talk, when, how much (record sizes are the
// application's write sizes up to MaxPayload).
package secure
