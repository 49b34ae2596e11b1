// Package proxy opens TCP connections through an explicit proxy, the only
// way out of many corporate networks: an HTTP proxy asked for a tunnel with
// CONNECT (RFC 9110 §9.3.6), with Basic credentials (RFC 7617) in
// Proxy-Authorization (RFC 9110 §11.7.2), or a SOCKS5 proxy (RFC 1928) with
// username/password authentication (RFC 1929), through
// golang.org/x/net/proxy.
//
// The agent reaches its TURN servers through it (the control connection
// and every RFC 6062 data connection) and the rendezvous client its
// WebSocket server; what runs inside the tunnel (TLS for turns: and wss:,
// STUN framing) is end to end and the proxy sees only bytes. The target's
// name goes to the proxy unresolved: a network whose only way out is a
// proxy often has no outside DNS either.
//
// [Setting] reads the one-string configuration users give (a URL,
// "direct", or "" for the environment, read as Go's HTTP client does but
// with ALL_PROXY as a fallback: HTTPS_PROXY, then ALL_PROXY, with NO_PROXY
// naming what is reached directly). [Dialer] opens one tunnel. A proxy's
// answer other than success is an [*Error] that names the proxy (without
// its password) and what it said; [Error.Refused] tells a refusal
// (credentials, policy) from a proxy that could not reach the target.
//
// [ParseResponse] is the pure parser of the proxy's answer to CONNECT; it
// is fuzzed (FuzzParseResponse).
package proxy
