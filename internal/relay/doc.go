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
// The header says how much may follow, and a body larger than can be valid
// (what the STUN server reads; 1,599 bytes, what pion reads) is refused
// before anything is allocated for it. Silence and garbage close the
// connection and are counted. The listeners hold at most
// Config.MaxConnsPerSource connections per source (an IPv4 address or an
// IPv6 /64, internal/limits) and Config.MaxConns in all, so a flood from
// one address cannot starve the others.
//
// # Not an open relay
//
// Authentication is always required: long-term credentials (RFC 8489 §9.2)
// or TURN REST credentials (draft-uberti-behave-turn-rest, as coturn's
// --use-auth-secret; an expired username gets 401). The NONCE is the
// relay's own, bound to the connection it was given on and good for
// Config.NonceLifetime, as coturn's with --stale-nonce: a request captured
// on one connection and sent again on another gets 438 (nonce.go).
// Allocations are capped per user and in all (486, RFC 8656 §7.2); a user
// is a long-term user name or a REST user part, in separate name spaces.
// Each allocation holds at most Config.MaxPermissions peer IPs (403
// beyond). Peers are filtered twice: pion asks the permission handler for
// the peer IP of CreatePermission and Connect (RFC 8656 §9, RFC 6062 §5.2:
// a refusal is 403), and the relay checks the full address when it dials a
// peer and when a peer connects to a relayed address (RFC 6062 §5.3).
// Loopback and private peers are refused unless the Config allows them, and
// the relay never connects to its own listening ports, those of its STUN
// server (the RFC 5780 alternates) and Config.OwnAddrs, nor to other
// services on any address of its own host.
//
// # Allocations of one relay
//
// Both peers of an ICE session often use the same relay, so it connects
// one allocation to another's relayed address — but only when that one
// permitted the first's relayed address, port included (a CreatePermission
// naming it), and has room for another connection awaiting ConnectionBind.
// A TURN permission is per IP, and every allocation of a relay has the
// relay's IP: without the port, any user's allocation could reach any
// other's once it permitted its peer on the same relay. A Connect to an
// allocation that did not permit the caller is answered as one to a port
// nobody listens on (447), so that live relayed ports cannot be found.
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
