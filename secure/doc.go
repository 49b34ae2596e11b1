// Package secure is the end-to-end layer icetcp runs over the ICE agent's
// net.Conn (connect --secret, send and receive): the agent stays a plain
// transport, the way ICE sits under DTLS in WebRTC, and this package sees
// only a net.Conn. Library users run it over an agent.Conn the same way
// (see the Example); TLS over a Conn works too, for those who have
// certificates.
//
// Two users share either a Code or a Secret out of band.
//
// A Code (NewCode, "7-purple-canal-ozone") is short enough to read aloud.
// Its number and first word name the rendezvous room (Code.RoomName); the
// two peers then run a PAKE over signaling (ExchangeCode: SPAKE2 on P-256,
// github.com/schollz/pake/v3), which gives whoever does not hold the code
// one guess per exchange and nothing to test offline, and prove to each
// other the key it agreed (ConfirmPeer's exchange). That key is a Secret
// without a printed form, and keys what a Secret keys below.
//
// A Secret (NewSecret, seven groups of four characters) is for machines
// and scripts: it carries its own 130 bits, needs no exchange, and can be
// reused by the same two parties. From it come, through HKDF-SHA256
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
// # Codes, secrets and the PAKE
//
// A pre-shared key handshake can be tested offline by anyone who sees it
// (the network path, a TURN relay) and the room name lets the rendezvous
// test guesses too, so a Secret must carry its entropy itself: 130 random
// bits, and ParseSecret refuses anything that is not such a code. A short
// Code is safe only behind a PAKE: an attacker must take part in an
// exchange to test one guess, and a failed exchange ends the code (the
// sender makes a new one). The PAKE is github.com/schollz/pake/v3 v3.0.5
// (croc's) on P-256, the one maintained Go PAKE the module proxy serves
// to this project (filippo.io/cpace and others are not served). Its
// weaknesses: it computes with math/big and crypto/elliptic's deprecated
// affine API, whose timing is not constant; the derivation of its points
// U and V is unpublished (whoever knows a discrete log between them could
// test guesses offline); it binds no identities into its key (the
// rendezvous room and the confirmation's nonces do that here); and it
// panics on malformed shares, so ExchangeCode checks every share is a
// P-256 point first (exchange.go).
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
