// Package wsclient is the client side of the icetcp rendezvous: Dial joins
// a room over a WebSocket (RFC 6455; ws:// or wss://) and returns a Client,
// a signaling.Channel that an agent connects over. It owns the Dialer (TLS
// roots, bearer token, proxy, the key of a key room, keepalive pings), the
// Client, and the errors of its transport (*CloseError for a close by the
// server, *ProxyError for a proxy that did not open the tunnel). The
// messages and the join protocol's pure parts are package signaling's; the
// server and the protocol it speaks are described in package
// signaling/rendezvous.
//
// A join goes in one round trip after the upgrade: the client sends
// {"v":1,"type":"join","room":"NAME"} (with "proof", its key's signature
// over the challenge in the upgrade answer's Icetcp-Join-Challenge header,
// for a key room: signaling.ProveJoin) and waits for joined or an error. A
// refusal, in the upgrade's HTTP answer (401, 429, 503) or in the join's
// answer, is returned as the signaling sentinel of its code
// (signaling.ErrorOf), so callers branch with errors.Is.
//
// The Client pings the server (RFC 6455 §5.5.2) every Dialer.PingInterval
// and counts the connection lost without a pong; its reader never blocks
// on Recv, so a busy agent still answers the server's pings.
//
// Through a proxy (Dialer.Proxy, or HTTPS_PROXY, ALL_PROXY and NO_PROXY
// from the environment), the WebSocket, ws:// included, goes through a
// tunnel: HTTP CONNECT (RFC 9110 §9.3.6) with Basic credentials, or SOCKS5
// (RFC 1928, with RFC 1929 username/password), from internal/proxy. wss://
// is TLS to the rendezvous inside the tunnel.
package wsclient
