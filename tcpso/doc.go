// Package tcpso opens the TCP connections of an ICE-TCP agent (RFC 6544):
// a listener and dialers that share one local port, and TCP simultaneous open
// with a retry schedule.
//
// # One port, many sockets
//
// RFC 6544 §7.2 requires an agent to accept incoming connections on the base
// of every passive and S-O candidate, and §5.2/§7.1 have it connect from that
// same base (to the STUN server for server-reflexive gathering, and to the
// peer for S-O checks). Several sockets therefore bind the same local
// address and port: [Listen] and [Dial] set SO_REUSEADDR and SO_REUSEPORT
// (Linux, macOS) so that a listener, the STUN connection and any number of
// outgoing connections coexist; the kernel keeps them apart by the remote
// address (the 4-tuple). Two connections with the same 4-tuple cannot exist,
// which is why a dial can fail with EADDRNOTAVAIL when the peer's SYN has
// already been accepted by our listener: the caller should take whichever of
// "accepted" and "connected" comes first.
//
// Windows has no SO_REUSEPORT. SO_REUSEADDR there lets a socket bind a port in
// use, but whether an incoming SYN reaches the listener or a bound dialer is
// not defined, so a listener and a dialer cannot share a port reliably.
// On Windows S-O candidates must not be offered ([PortSharing] reports false);
// active and passive candidates work, since they need no sharing. Other
// systems without an implementation here (the BSDs, illumos, …) return
// errors.ErrUnsupported for a fixed local port.
//
// # Simultaneous open
//
// [SimultaneousOpen] is the hole-punching step of S-O candidates (RFC 6544
// §7.2, RFC 5382 REQ-2): both agents connect() to each other's mapped address
// from their S-O base at about the same time. A NAT that has not yet seen our
// outgoing SYN answers the peer's SYN with RST or drops it (RFC 5382 REQ-4,
// and the field notes: Linux masquerade answers RST), so "connection refused",
// "unreachable" and silence all mean "not yet": the loop retries with
// back-off ([Schedule]) until a SYN crosses. Punch.Start lines the first SYNs
// up from a signalled time, as libp2p DCUtR does; Punch.PrimeTTL sends the
// first SYN of each attempt with a low TTL so it opens our own NAT mapping
// without reaching the far NAT (the STUNT low-TTL technique, Guha & Francis,
// IMC 2005); Linux only.
package tcpso
