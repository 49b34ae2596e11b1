// Package trustproxy takes a client's address from the proxies and load
// balancers an operator trusts, and from nobody else: behind a
// TLS-terminating proxy or a TCP load balancer, every connection comes from
// the proxy, and per-source limits would count one source for everyone.
//
//   - HTTP (the rendezvous): ClientAddr reads Forwarded (RFC 7239 §4) or,
//     without it, X-Forwarded-For, and walks the chain from the right past
//     the trusted hops; the first untrusted hop is the client.
//   - TCP (STUN and TURN): Listen accepts the PROXY protocol version 2
//     header (HAProxy's proxy-protocol.txt §2.2) from trusted sources.
//     The header is framed here (exactly its 16 bytes and announced
//     length are read, never a byte of the client's stream) and parsed by
//     github.com/pires/go-proxyproto, a maintained parser that Traefik and
//     others use, fuzzed upstream. A connection from an untrusted source is
//     handed on untouched: a header it sends is its own data (and no valid
//     STUN or TLS), never an address.
//
// A Set of trusted prefixes is empty by default: nobody's word is taken.
package trustproxy
