// Package agent is the ICE state machine of icetcp: an ICE agent (RFC 8445)
// that uses only TCP candidates (RFC 6544) and hands the application a
// net.Conn to the peer.
//
// What it implements, by section:
//   - RFC 8445 §5.1.1.1 host candidates for every usable interface address;
//     RFC 6544 §4.5 an active placeholder (port 9), a passive listener and an
//     S-O socket per address.
//   - RFC 8445 §5.3 credentials from crypto/rand (ufrag 8, pwd 24 ICE chars).
//   - RFC 8445 §6.1.2 the checklist: pairing (candidate.CanPair, RFC 6544 §6.2),
//     pair priority, pruning, foundation freezing, pacing (Ta), triggered checks.
//   - RFC 8445 §7.2/§7.3 connectivity checks over RFC 4571 framed TCP with
//     USERNAME, MESSAGE-INTEGRITY (short-term), FINGERPRINT, PRIORITY,
//     ICE-CONTROLLING/ICE-CONTROLLED and USE-CANDIDATE; responses with
//     XOR-MAPPED-ADDRESS; 487 role conflict repair; peer-reflexive remote
//     candidates learned from checks on accepted connections (RFC 6544 §7.2:
//     a check from an active candidate is matched by IP only, its port is
//     ephemeral).
//   - RFC 8445 §8.1.1 regular nomination by the controlling agent.
//   - RFC 7675 consent freshness on the selected connection.
//
// Security: a connection accepted on a passive or S-O port (they are bound
// with SO_REUSEADDR/SO_REUSEPORT) carries no application data until a check
// on it has been authenticated with MESSAGE-INTEGRITY; application bytes that
// arrive earlier close the connection.
//
// Concurrency: one goroutine (Agent.run) owns all ICE state. Sockets,
// timers and the signaling channel feed it through a channel of closures;
// nothing it owns is guarded by a mutex.
package agent
