package agent

import (
	"net"
	"time"
)

// Toward a standard agent, no STUN frame of ours may follow our application
// data on the selected connection, except an answer to a check the peer
// sent after that data.
//
// libnice (0.1.21, and its code is unchanged since) reads a TCP
// connection into one RFC 4571 buffer per component and hands the
// application one frame per read. A read that finds a whole frame already
// in that buffer, left behind by the read that delivered the frame before
// it, returns it as application data without asking whether it is STUN
// (agent_try_consume_next_rfc4571_chunk). So a STUN frame that reaches
// libnice behind a data frame its application has not read yet becomes
// application data: a Binding answer is 64 bytes of garbage in the stream
// and the check it answered fails; a consent check is garbage and is never
// answered. Only STUN frames that come first in what libnice reads, or
// behind other STUN frames, are handled as STUN.
//
// Hence two rules toward agents that did not offer icetcp's extensions:
//
//   - The first application write waits (at most peerCheckWait) until we
//     have answered a check of the peer on the selected connection. A
//     controlled libnice answers our nomination and only then sends its own
//     (triggered) check on the pair, which our data would otherwise precede.
//     A peer that never checks (ICE-lite) costs the bound, once.
//   - Our own checks (consent, RFC 7675) stop at our first application
//     byte: none can be sent safely after it, since whether the peer has
//     read our data is not knowable. The connection's liveness is then
//     TCP's: keepalive probes while it is idle (keepAlive) and, on Linux, a
//     user timeout of ConsentTimeout for data the peer does not
//     acknowledge. (libnice itself sends no keepalive checks over TCP.)
//
// icetcp peers read STUN anywhere in the stream; neither rule applies.

// peerCheckWait bounds how long the first application write toward a
// standard agent waits for the peer's own check on the selected connection.
// libnice sends it on its next pacing tick (Ta, 20 ms) after answering our
// nomination; a starved host takes longer.
const peerCheckWait = time.Second

// beforeFirstWrite runs once, before the first application bytes go out
// on the selected connection: toward a standard agent it waits for our
// answer to the peer's check and stops our own checks; in every case the
// STUN messages queued so far (answers, our end of stream) go first.
func (c *Conn) beforeFirstWrite() {
	if !c.eos {
		waited, ok := c.pc.awaitAnswer(peerCheckWait)
		if !ok {
			c.a.log.Debugf("first write to %s: the peer did not check the selected connection within %v", c.pc.remote, waited)
		}
		c.pc.endChecks()
		setUserTimeout(c.pc.c, c.a.cfg.ConsentTimeout)
	}
	c.pc.flushSTUN()
}

// setUserTimeout bounds how long data may stay unacknowledged on c before
// the kernel gives up on the connection (TCP_USER_TIMEOUT where the OS has
// it; see usertimeout_*.go). A relayed connection is our TCP connection to
// the TURN server: the timeout then watches the relay, not the peer.
func setUserTimeout(c net.Conn, d time.Duration) {
	for {
		switch cc := c.(type) {
		case *net.TCPConn:
			_ = setTCPUserTimeout(cc, d)
			return
		case interface{ NetConn() net.Conn }: // TLS to a TURN server, a relayed connection
			c = cc.NetConn()
		default:
			return
		}
	}
}
