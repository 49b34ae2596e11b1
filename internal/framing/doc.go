// Package framing implements the RFC 4571 framing that RFC 6544 §7.1 puts
// around every STUN message and every application byte sent on an ICE-TCP
// connection: each frame is a 16-bit big-endian length followed by that many
// bytes (RFC 4571 §2), so a frame carries at most 65535 bytes and a
// zero-length frame is legal.
//
// Because connectivity checks and consent freshness (RFC 7675) share the
// selected connection with application data, [IsSTUN] tells a STUN message
// from application payload by the fixed header rules of RFC 5389 §6 and the
// magic-cookie test recommended for demultiplexing in RFC 5389 §7.3 (and
// RFC 7983 for the first-byte ranges).
//
// The codec is pure: [AppendFrame] and [IsSTUN] never touch I/O, and
// [Reader] / [Writer] only add buffering and locking over an io.Reader or
// io.Writer. Plain STUN over TCP to a STUN server (RFC 6544 §5.2, no length
// prefix) is not framed and lives in internal/stuntcp.
package framing
