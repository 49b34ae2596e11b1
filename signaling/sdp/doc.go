// Package sdp carries an ICE agent's signaling in SDP attribute lines, so an
// application that already exchanges SDP offers and answers (WebRTC, SIP)
// connects an icetcp agent without writing an adapter.
//
// It implements:
//   - RFC 8839 §5.4 a=ice-ufrag and a=ice-pwd, §5.6 a=ice-options
//     ("trickle", RFC 8840 §4.1.1), §5.3 a=ice-lite, §5.1 a=candidate with
//     the TCP grammar of RFC 6544 §4.5 (kept as opaque lines here: package
//     candidate parses them), and RFC 8840 §8.2 a=end-of-candidates;
//   - the ICE attributes at session level (before the first m= line) that
//     RFC 8839 §5.4 lets a media section inherit;
//   - roles from offer/answer, RFC 8445 §6.1.1 and RFC 8839 §3.1.2: the
//     offerer is controlling when both agents are full; a full agent facing
//     a lite one is controlling.
//
// Parse and Marshal are pure. Channel is a signaling.Channel that turns the
// agent's messages into SDP lines for a callback and the remote SDP (a whole
// description, a trickle fragment or single lines) into messages for the
// agent.
//
// AddRemote's unit is a description, a fragment or a single candidate or
// end-of-candidates line; a=ice-ufrag and a=ice-pwd come in one call.
// What it cannot use is its error and also breaks the Channel (Recv
// returns a *RemoteError), so the agent fails at once instead of waiting
// for credentials that will not come.
//
// What SDP cannot carry is dropped: the tie-breaker (the roles come from
// offer/answer instead), bye, checks-done and the round-trip ping the
// controlling agent sizes its wait for a direct pair with (without it the
// agent uses its default). tcp-so pairs need no timing message: both
// sides punch as soon as the pair exists.
package sdp
