// Package tcpso opens the TCP connections of an ICE-TCP agent (RFC 6544):
// listeners and dialers that share one local port, and TCP simultaneous
// open with a retry schedule.
//
// # One port, many sockets
//
// RFC 6544 §7.2 requires an agent to accept incoming connections on the base
// of every passive and S-O candidate, and §5.2/§7.1 have it connect from that
// same base (to the STUN server for server-reflexive gathering, and to the
// peer for S-O checks). Several sockets therefore bind the same local
// address and port: ListenConfig{Shared: true} and Dial from a fixed port set
// SO_REUSEADDR and SO_REUSEPORT (Linux, macOS, FreeBSD, NetBSD, OpenBSD,
// DragonFly: one file, sockopt_unix.go) so that a listener, the STUN
// connection and any number of outgoing connections coexist; the kernel
// keeps them apart by the remote address (the 4-tuple). A passive candidate
// that needs no sharing takes a plain listener (ListenConfig{}), which works
// on every system.
//
// Windows has no SO_REUSEPORT. SO_REUSEADDR there lets a socket bind a port in
// use, but whether an incoming SYN reaches the listener or a bound dialer is
// not defined, and it lets other processes bind the port too. So on Windows
// S-O candidates must not be offered ([PortSharing] reports false); a shared
// listener sets SO_REUSEADDR only, for server-reflexive gathering from a
// passive candidate. Other systems (illumos, AIX, Plan 9, js/wasm) return
// errors.ErrUnsupported for a shared listener and a fixed local port.
//
// # Simultaneous open
//
// [Open] (and [SimultaneousOpen]) is the hole-punching step of S-O candidates
// (RFC 6544 §7.2, RFC 5382 REQ-2): both agents connect() to each other's
// mapped address from their S-O base at about the same time. A NAT that has
// not yet seen our outgoing SYN answers the peer's SYN with RST or drops it
// (RFC 5382 REQ-4; Linux masquerade answers RST), so "connection refused",
// "unreachable" and silence all mean "not yet". Punch.Start lines the first
// SYNs up from a signalled time, as libp2p DCUtR does; Punch.Delay orders
// two peers on purpose.
//
// What the NAT lab showed about the retry schedule (Linux netfilter NATs,
// the most common home-router NAT):
//
//   - Two RST-answering NATs cross only if each NAT has forwarded its own
//     SYN before the peer's arrives: both SYNs must leave within one one-way
//     delay of each other. With synchronisation that is 1.5 ms off and a
//     0 ms path the first SYN always meets RST, and retrying both sides after
//     the same back-off keeps the offset: every attempt failed alike.
//     Randomising the back-off alone did not help (2 of 20). What works is
//     the rush (Schedule.Rush): the side whose SYN was refused sends a new one
//     at once, so its NAT is open again within microseconds; when the late
//     side's SYN leaves, it meets an open NAT. 20 of 20 on the first attempt,
//     at 0 to 100 ms, with the peer up to 20 ms late, with jitter and loss,
//     also with no router between the NATs.
//   - On a busy host the rush was not enough. At 0 ms an unpaced rush spent
//     its 200 SYNs in a few milliseconds, back-offs grew to 1 s, and a punch
//     stopped after 10 attempts: two sides out of step (one starved of CPU
//     for a moment) rarely met again, and one gave up while the other was
//     still punching (2 of 300 trials failed with two busy loops beside the
//     lab). Now a rush opens with a burst (Schedule.RushBurst) and then
//     paces its SYNs with jittered gaps (Schedule.RushGap) so that it lasts
//     its time, back-offs never exceed half a rush, so that the two sides'
//     rushes always overlap, and a punch runs until its deadline: see
//     Schedule for the argument and the SYN rate.
//   - A SYN's handshake can end while the process is not running; when it
//     runs again, the SYN's deadline may be seen before the poller's
//     wake-up. net.Dialer then closes a connection the peer already has (its
//     check met EOF, and the pair failed on both sides: seen in the lab
//     under load). On Linux a punch's connect is driven by hand and asks the
//     socket once more when its deadline passes.
//   - A NAT that forwarded our SYN remembers its sequence number. If the
//     peer's SYN arrives when no socket of ours is in SYN_SENT with that
//     number (it timed out, or an ICMP error killed it), our host answers
//     with another sequence number, which conntrack finds out of window and
//     sends out un-translated; our later SYNs on that 4-tuple are dropped
//     the same way until the entry expires (SYN_SENT2: 120 s). So a SYN that
//     met silence is replaced at once, never after a back-off.
//   - Low-TTL priming (Punch.PrimeTTL, STUNT, Guha & Francis, IMC 2005)
//     opens our NAT with a SYN that dies at a router before the far NAT.
//     On Linux the router's ICMP Time Exceeded aborts the connect (the
//     outcome is "primed" and the full-TTL SYN follows at once), so the
//     primed socket is gone when the peer's SYN arrives, and the NAT's entry
//     carries the dead socket's sequence number: the case above. Measured:
//     priming alone 0 of 5 in the lockstep case, priming with the rush 2 of
//     5 against 5 of 5 for the rush alone. It is off by default; it may help
//     on systems where that ICMP does not abort a connect (BSD, macOS,
//     Windows: not implemented, not measured).
//
// An S-O candidate also listens: with Punch.Listener, a connection that
// listener accepts from the punch's remote address ends the punch
// (Result.Accepted). That is how a public peer, or a NAT that lets
// unsolicited SYNs in, completes a punch whose SYN our NAT forwarded first.
//
// [Trace] is a TCP traceroute toward a server (RFC 792, RFC 1812 §5.3.1): it
// finds the TTL that passes all our NATs (PrimeTTL), and tells whether any
// router answers between our NAT and the internet.
package tcpso
