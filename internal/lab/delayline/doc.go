// Package delayline is the NAT lab's wide-area network: a user-space IPv4
// router between TUN devices that delays, jitters and drops packets, because
// the lab's kernel has no netem.
//
// Each attached link is a packet endpoint (a TUN file in the lab, an
// in-memory pipe in tests) plus the address prefixes reachable through it.
// One goroutine per link reads packets, looks up the destination address
// (longest prefix match) and queues the packet on the destination link; one
// goroutine per link writes queued packets when they are due. Queues are
// binary heaps ordered by due time, so the number of goroutines and timers
// does not grow with traffic.
//
// # How delay composes into round-trip time
//
// A link's LinkConfig applies to packets written INTO that link (egress from
// the line towards the host behind it), once per packet. A packet from host X
// to host Y enters the line from X's link and leaves through Y's link, so
//
//	one-way delay X→Y = Delay(Y)
//	RTT(X, Y)          = Delay(X) + Delay(Y)
//
// plus, on average, (Jitter(X)+Jitter(Y))/2 for the uniform jitter. Two NAT
// gateways each configured with Delay d see an RTT of 2d between them; a
// gateway with Delay d and a server with Delay s see d+s. Loss applies per
// link in the same direction: a round trip X→Y→X survives with probability
// (1-Loss(Y))(1-Loss(X)).
//
// With Jitter zero, or with Reorder false, packets leave a link in the order
// they were queued (a late packet waits for its predecessors). With Jitter
// and Reorder both set, each packet gets its own due time and may overtake.
//
// With Config.Router set the line is also one router hop: TTL decremented,
// expired packets answered with ICMP Time Exceeded (see Config.Router).
//
// Packets whose destination matches no link, and anything that is not IPv4,
// are dropped and counted in Stats.
package delayline
