// Package limits is what every listener of `icetcp serve` uses so that one
// client cannot take the server: the unit a per-source limit counts (an
// IPv4 address, or the /64 of an IPv6 address), a counter of open things in
// all and per source, a log of refusals that stays a few lines under a
// flood, and a net.Listener that applies the counter at accept, before a
// single byte is read (the rendezvous's HTTP server and the metrics server
// count there, before the WebSocket upgrade).
//
// The STUN server (internal/stuntcp), the TURN relay (internal/relay), the
// rendezvous (signaling/rendezvous) and the metrics server share these, so
// that a limit means the same thing on every port.
package limits
