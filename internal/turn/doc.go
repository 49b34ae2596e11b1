// Package turn is the client side of TURN over TCP with TCP allocations
// (RFC 6062): the relayed candidates of the agent. [Allocate] reaches a TURN
// server over TCP or TLS (RFC 7065 URIs, [ParseURI]), authenticates with
// long-term credentials (RFC 8489 §9.2) or TURN REST credentials minted from
// a shared secret ([RESTCredentials]), and makes an allocation with
// REQUESTED-TRANSPORT=TCP (RFC 6062 §4.1; REQUESTED-ADDRESS-FAMILY when the
// server is reached over IPv6, RFC 6156). [Allocation.Connect] asks the
// server to connect to a peer (§4.3) and binds a new data connection to it
// (ConnectionBind, §4.3); [Allocation.Accept] returns peers' connections to
// the relayed address (ConnectionAttempt, §4.4). [Allocation.Permit]
// installs permissions (RFC 8656 §9). The allocation is refreshed at half
// its granted lifetime (§8) and permissions every 4 minutes (they live 5).
//
// # Goroutines
//
// An allocation has two goroutines of its own. The reader owns reads of the
// control connection: it hands each response to the request waiting for it
// (matched by transaction ID) and each ConnectionAttempt to a short-lived
// goroutine that dials a data connection and binds it at once, whether or
// not Accept is waiting: the server buffers what the peer sends before the
// bind (RFC 6062 §5.3) but coturn keeps only 64 KiB of it, so the bind must
// not wait for the caller. Up to 16 bound connections wait for Accept;
// attempts beyond that are ignored (the server drops them after 30 s) and
// the reader never blocks. Accept need not be called continuously. The
// maintainer sleeps until the next refresh is due and sends it. Requests are
// written by the goroutine that makes them (Connect, Permit, the
// maintainer): net.Conn serialises whole writes, and no lock is held across
// I/O. Over TCP a request is sent once and the client waits for its answer
// (RFC 8489 §6.2.2); ctx bounds every call. Connect dials its data
// connection in parallel with the Connect transaction, saving a round trip.
// Close sends a Refresh with LIFETIME 0, closes the control connection,
// waits for the allocation's goroutines and closes bound connections that
// Accept did not take: nothing is left behind. An idle allocation costs two
// goroutines, one TCP connection and about 12 KiB.
//
// # Ends of streams
//
// A data connection ends alike whether the peer closed it or the relay
// failed, and servers differ: pion's server sends a FIN in both cases,
// coturn 4.6.1 resets the data connection in both. At the first io.EOF,
// ECONNRESET or EPIPE a data connection asks the server on the control
// connection whether the allocation still exists (a CreatePermission for its
// peer); if not, Read and Write return an error matching ErrAllocationLost
// instead, so a relay failure never passes for the peer's end of stream.
// The returned connections outlive Close on this side, but servers close
// them when the allocation goes: keep the allocation while they are used.
//
// # What servers do (checked on loopback, see the tests)
//
// coturn 4.6.1: it delivers the first 65,536 bytes a peer sends before the
// ConnectionBind and silently drops the rest (the stream goes on with a
// hole); it resets rather than closes: a peer's close reaches the client as
// ECONNRESET after the last bytes, a half-close (CloseWrite) from either side
// resets both connections, and a peer that closes before the bind makes the
// bind fail; it resets the data connections when the allocation is
// deallocated; it reports --max-allocate-lifetime in the Allocate response
// but grants the default 600 s on refresh; and full-duplex bulk transfers
// stall now and then (1 to 5 in 100 exchanges of 1-3 MiB each way at once
// on loopback; 2 in 100 of 1 MiB again; and one of 256 KiB between two
// agents under load): one direction stops for good, every byte before the
// stall intact. The cause is a lost wakeup in coturn's flow control
// between a relayed connection's two legs (ns_ioalib_engine_impl.c, the
// same on its master): it stops reading one leg while the other leg's
// output buffer holds more than 192 KiB minus 65,507 bytes, and starts it
// again only when the other leg's output has drained to empty and, at
// that moment, its own output has room; if the opposite direction is
// backed up then, nothing starts it again. At a stall the kernel shows it:
// coturn's socket of the stopped leg holds unread bytes while its output
// toward the reader is empty and the reader waits. No client can restart
// the leg; one direction at a time never stalls (the reverse direction
// must be backed up). pion/turn v5.1.3's server buffers pre-bind data
// without a limit, relays FINs, and does not stall; its Server.Close leaves
// clients' control connections open, and requests on them go unanswered or
// are answered for the allocations it closed.
//
// # Why not pion/turn's client
//
// pion/turn v5.1.3's TCPAllocation cannot back this API: it retransmits
// requests over TCP every 200 ms (a Connect to a peer slower than that is
// answered 446 Connection Already Exists), its reader blocks for good on the
// eleventh ConnectionAttempt not yet accepted (every later request, refreshes
// included, fails), refresh failures are only logged, Connect, permissions
// and refreshes take no context, Accept is not woken by Close, and
// BindConnection fails when the response's header comes in two reads and
// does not work over TLS. This package speaks the protocol itself with
// pion/stun/v4 encoding every message.
package turn
