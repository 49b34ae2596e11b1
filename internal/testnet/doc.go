// Package testnet has what tests that open many connections share: a
// dialer from a chosen source address whose sockets close without leaving
// TIME_WAIT behind.
//
// A flood test opens thousands of connections from one loopback address
// (the attacker); closed normally, each would hold its source port in
// TIME_WAIT for a minute, and tests beside it (packages run in parallel)
// would find no free port on that address. An abortive close (SO_LINGER
// zero: RST, no TIME_WAIT) gives the port back at once. The servers under
// test see a reset instead of a FIN, which is what an attacker's
// disconnect may well be.
package testnet
