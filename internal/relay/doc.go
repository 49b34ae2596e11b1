// Package relay is the TURN relay that `icetcp serve` runs: TURN (RFC 8656)
// over TCP and TLS with TCP allocations (RFC 6062), built on pion/turn v5's
// server, sharing one port with the plain STUN Binding server of
// internal/stuntcp as coturn shares 3478.
//
// # One port, two servers
//
// Every accepted connection must send one complete STUN message within
// Config.FirstMessageTimeout (RFC 5389 §7.2.2: over TCP a message is
// delimited by its own 20-byte header). A Binding request goes, with the
// bytes already read put back in front, to the stuntcp.Server (keepalive
// Bindings follow on the same connection); anything else — Allocate,
// ConnectionBind (RFC 6062 §5.4), Refresh — goes to pion's TURN server.
// Silence and garbage close the connection and are counted. Each source IP
// holds at most Config.MaxConnsPerSource connections, so a flood from one
// address cannot starve the others.
//
// # Not an open relay
//
// Authentication is always required: long-term credentials (RFC 8489 §9.2)
// or TURN REST credentials (draft-uberti-behave-turn-rest, as coturn's
// --use-auth-secret; an expired username gets 401). Allocations per user are
// capped (486, RFC 8656 §7.2). Peers are filtered twice: pion asks the
// permission handler for the peer IP of CreatePermission and Connect
// (RFC 8656 §9, RFC 6062 §5.2: a refusal is 403), and the relay checks the
// full address when it dials a peer and when a peer connects to a relayed
// address (RFC 6062 §5.3). Loopback and private peers are refused unless the
// Config allows them, and the relay never connects to its own listening ports
// or to other services of its own host — but it does connect to the relayed
// addresses of its own allocations, because both peers of an ICE session
// often use the same server.
//
// # The data plane
//
// After ConnectionBind (RFC 6062 §5.4) the client data connection and the
// peer data connection are joined here rather than by pion's io.Copy pair:
// with plain TCP on both sides the bytes move by splice(2) without being
// copied to user space, a FIN on one side becomes a FIN (half-close) on the
// other instead of closing both, and a reset is passed on as a reset.
//
// Peer data that arrives before ConnectionBind (RFC 6062 §5.3) is not read
// by the relay: it waits in the kernel's receive buffer of the peer
// connection, which the kernel does not grow while nobody reads (the
// net.ipv4.tcp_rmem default, 128 KiB on Linux; 115 KiB of data measured),
// and TCP flow control holds the rest at the peer. Nothing is dropped and
// the relay process holds no copy of it. At most 32 peer connections per
// allocation wait like this (more are reset), and pion closes each after
// 30 s without ConnectionBind: about 4 MiB of kernel memory per allocation
// at worst.
package relay
