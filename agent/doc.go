// Package agent is the ICE state machine of icetcp: an ICE agent (RFC 8445)
// that uses only TCP candidates (RFC 6544) and hands the application a
// net.Conn to the peer.
//
// How the pieces fit: New makes an Agent from a Config (its zero value
// works); Gather (optional) starts gathering; Connect exchanges candidates
// over a signaling.Channel (a WebSocket to a rendezvous from
// signaling/wsclient, an in-memory pair, or signaling/sdp for an
// offer/answer application), runs the checks and returns the selected
// *Conn. A Mux shares one passive port among many agents. Sockets come
// from a Network (nil: the host's TCP stack through package tcpso; tests
// use internal/lab/memnet).
//
// What it implements, by section:
//   - RFC 8445 §5.1.1.1 host candidates for every usable interface address,
//     interleaved by family (RFC 8421 §4); RFC 6544 §4.5 an active
//     placeholder (port 9), a passive listener and an S-O socket per address.
//   - RFC 6544 §5.2 server-reflexive candidates over STUN/TCP from the
//     candidates' own ports, kept open while checks run.
//   - RFC 6544 §5.3 with RFC 6062 relayed candidates: a TCP allocation per
//     TURN server (internal/turn), a passive relayed candidate (peers connect
//     to the relayed address: ConnectionAttempt, ConnectionBind) and an
//     active one (Connect, ConnectionBind), permissions for the peer's
//     addresses, relay type preference 0.
//   - RFC 8445 §5.3 credentials from crypto/rand (ufrag 8, pwd 24 ICE chars).
//   - RFC 8445 §6.1.2 the checklist: pairing (candidate.CanPair, RFC 6544 §6.2),
//     pair priority, pruning, foundation freezing, pacing (Ta) for ordinary
//     checks, triggered checks at once (§7.3.1.4).
//   - RFC 8445 §7.2/§7.3 connectivity checks over RFC 4571 framed TCP with
//     USERNAME, MESSAGE-INTEGRITY (short-term), FINGERPRINT, PRIORITY,
//     ICE-CONTROLLING/ICE-CONTROLLED and USE-CANDIDATE; responses with
//     XOR-MAPPED-ADDRESS; 487 role conflict repair; peer-reflexive remote
//     candidates learned from checks on accepted connections (RFC 6544 §7.2:
//     a check from an active candidate is matched by IP only).
//   - RFC 8445 §8.1.1 regular nomination; between icetcp agents (negotiated
//     as icetcp-nominate) nomination with the first check.
//   - RFC 7675 consent freshness on the selected connection; toward a
//     standard agent only until our first application byte, since libnice
//     takes a STUN frame behind data it has not read for data (stdpeer.go);
//     TCP keepalive and TCP_USER_TIMEOUT watch the connection after it.
//
// Beyond the RFCs: both agents exchange their NAT class (internal/natcheck,
// RFC 5780 over TCP) to skip hopeless simultaneous opens and to nominate a
// working relayed pair as soon as no direct pair can win; icetcp agents
// end a stream in band (icetcp-eos), so consent runs after a half-close and
// a crash is never a clean end, and read frames of any size
// (icetcp-frames; 8,192 bytes toward others).
//
// Port prediction (icetcp-predict, predict.go): behind a NAT that gives
// every new connection the next port of a series (natcheck's sequential
// allocation with an endpoint-dependent mapping) the agent sights the
// series from a fresh port, announces a window of the ports its next
// connections will get as server-reflexive tcp-so candidates, and punches
// from there once the peer has punched toward them; two such NATs meet by
// a leader's window and the other side's ordered reply. A passive
// server-reflexive candidate is judged by the filtering of the NAT in
// front of it: endpoint-independent filtering lets anyone in.
//
// Security: a connection accepted on a passive, S-O or relayed candidate
// carries no application data until a check on it has been authenticated
// with MESSAGE-INTEGRITY; application bytes that arrive earlier close the
// connection. Unauthenticated connections are capped in total and per
// source.
//
// Concurrency: one goroutine (Agent.run) owns all ICE state. Sockets,
// timers and the signaling channel feed it through an unbuffered channel of
// closures; nothing it owns is guarded by a mutex. A connected idle agent
// runs two goroutines: its loop and the selected connection's reader.
package agent
