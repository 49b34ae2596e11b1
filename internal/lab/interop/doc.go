// Package interop runs third-party ICE agents as peers for icetcp's tests
// and benchmarks: libnice (from Python, a script in this package), pion/ice
// v2 (in process, or in a child process for the NAT lab) and libwebrtc
// (from Node with npm @roamhq/wrtc, ICE state only: DTLS is not ours).
//
// Every peer is a *Peer with one small API: its ICE signaling goes over a
// signaling.Channel (Channel gives an in-memory one to hand to an
// agent.Agent; JoinRoom puts the peer in a room of a rendezvous Server, so
// a real `icetcp connect` meets it), and its data is driven with Send,
// Close and WaitReceived. Peers speak RFC 6544 TCP candidates only:
// active/passive (none of these agents offers tcp-so) with RFC 4571
// framing (RFC 6544 §7.1).
//
// A missing tool (python3-gi and gir1.2-nice-0.1, node and @roamhq/wrtc)
// makes the Start* helpers skip the test, except under CI=true, where they
// fail: scripts/install-interop.sh installs everything.
//
// It is test infrastructure: nothing in the product imports it.
package interop
