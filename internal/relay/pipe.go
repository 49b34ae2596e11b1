package relay

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// peerConn is a peer data connection (RFC 6062 §5.2/§5.3) as pion holds it
// until ConnectionBind joins it to a client data connection.
type peerConn struct {
	*net.TCPConn
	s       *Server
	owner   *relayListener
	key     pairKey
	local   *net.TCPAddr // the relayed address
	remote  *net.TCPAddr // the peer as presented (see presentPeer)
	settled atomic.Bool  // no longer counted as pending: bound or closed
	joinMu  sync.Mutex   // guards pair and closed
	pair    *pair
	closed  bool
	closeMu sync.Once
}

// pairKey finds a peerConn from pion's wrapper of it, which exposes only the
// net.Conn methods.
type pairKey struct{ local, remote netip.AddrPort }

// newPeerConn registers c as a pending peer connection of r; nil after Close.
func (s *Server) newPeerConn(c *net.TCPConn, r *relayListener, peer netip.AddrPort) *peerConn {
	p := &peerConn{
		TCPConn: c, s: s, owner: r,
		key:    pairKey{r.relay, peer},
		local:  net.TCPAddrFromAddrPort(r.relay),
		remote: net.TCPAddrFromAddrPort(peer),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.peers[p.key] = p
	r.pending.Add(1)
	return p
}

func (p *peerConn) LocalAddr() net.Addr  { return p.local }
func (p *peerConn) RemoteAddr() net.Addr { return p.remote }

func (p *peerConn) Close() error {
	p.closeMu.Do(func() {
		p.s.mu.Lock()
		if p.s.peers[p.key] == p {
			delete(p.s.peers, p.key)
		}
		p.s.mu.Unlock()
		p.settle()
		p.joinMu.Lock()
		p.closed = true
		pr := p.pair
		p.joinMu.Unlock()
		if pr != nil {
			// A copy that already passed its EOF on waits for the
			// other; closing must end it too (Server.Close, or an
			// allocation's end).
			pr.stop(net.ErrClosed)
		}
	})
	return p.TCPConn.Close()
}

// settle stops counting p against its allocation's pending connections,
// once, whether it was bound or closed first.
func (p *peerConn) settle() {
	if p.settled.CompareAndSwap(false, true) {
		p.owner.pending.Add(-1)
	}
}

// peerOf finds the peerConn behind pion's wrapper x.
func (s *Server) peerOf(x any) *peerConn {
	a, ok := x.(interface {
		LocalAddr() net.Addr
		RemoteAddr() net.Addr
	})
	if !ok {
		return nil
	}
	k := pairKey{addrPortOf(a.LocalAddr()), addrPortOf(a.RemoteAddr())}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[k]
}

// WriteTo is called by pion's ConnectionBind handler as io.Copy(peer,
// client): the client-to-peer half of the relayed pair.
func (c *clientConn) WriteTo(w io.Writer) (int64, error) {
	pr := c.pairWith(w)
	if pr == nil {
		return io.Copy(w, struct{ io.Reader }{c.stream})
	}
	return pr.run(toPeer)
}

// ReadFrom is called by pion's ConnectionBind handler as io.Copy(client,
// peer): the peer-to-client half.
func (c *clientConn) ReadFrom(r io.Reader) (int64, error) {
	pr := c.pairWith(r)
	if pr == nil {
		return io.Copy(struct{ io.Writer }{c.stream}, r)
	}
	return pr.run(toClient)
}

// pairWith returns the pair of c and the peer connection behind pion's
// wrapper x. The peer may have been closed, and forgotten, before the
// second of pion's copies starts (Server.Close at any time): that copy
// then joins the pair the first one made, whose waiting would otherwise
// never end; nil only when neither copy found the peer.
func (c *clientConn) pairWith(x any) *pair {
	if p := c.s.peerOf(x); p != nil {
		return p.join(c)
	}
	return c.pair.Load()
}

type direction int

const (
	toPeer direction = iota
	toClient
)

// pair is a bound client data connection and peer data connection. Each
// direction copies until EOF and passes the FIN on (half-close), then
// waits for the other direction: pion closes both connections as soon as
// either copy returns, which would cut a half-closed stream short. An error
// closes both at once, and a reset is passed on as a reset.
type pair struct {
	s       *Server
	client  *clientConn
	peer    *peerConn
	done    [2]chan struct{} // closed when that direction passed its EOF on
	aborted chan struct{}
	abort   sync.Once
	running atomic.Int32
}

// join returns p's pair with c, made by whichever of pion's two copies
// comes first.
func (p *peerConn) join(c *clientConn) *pair {
	p.joinMu.Lock()
	defer p.joinMu.Unlock()
	if p.pair == nil {
		p.pair = &pair{
			s: p.s, client: c, peer: p,
			done:    [2]chan struct{}{make(chan struct{}), make(chan struct{})},
			aborted: make(chan struct{}),
		}
		p.pair.running.Store(2)
		p.settle()
		c.data.Store(true)
		// The idle deadline of the control phase must not cut the stream.
		c.stream.SetDeadline(time.Time{})
		p.s.stats.relayed.Add(1)
		p.s.stats.relayedTotal.Add(1)
		c.pair.Store(p.pair)
		if p.closed {
			// Closed between peerOf and here: nothing to relay.
			p.pair.stop(net.ErrClosed)
		}
	}
	return p.pair
}

func (pr *pair) run(d direction) (int64, error) {
	s := pr.s
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		pr.stop(net.ErrClosed)
		pr.finish()
		return 0, ErrServerClosed
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer pr.finish()

	n, err := pr.copy(d)
	if err != nil {
		pr.stop(err)
		return n, err
	}
	if d == toPeer {
		pr.peer.CloseWrite()
	} else {
		pr.client.closeWrite()
	}
	close(pr.done[d])
	select {
	case <-pr.done[1-d]:
	case <-pr.aborted:
	}
	return n, nil
}

func (pr *pair) finish() {
	if pr.running.Add(-1) == 0 {
		pr.s.stats.relayed.Add(-1)
	}
}

// stop ends both directions: close both connections (the other copy fails
// and returns), with an RST when err was a reset.
func (pr *pair) stop(err error) {
	pr.abort.Do(func() {
		close(pr.aborted)
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			pr.peer.SetLinger(0)
			if pr.client.tcp != nil {
				pr.client.tcp.SetLinger(0)
			}
		}
		pr.peer.TCPConn.Close()
		pr.client.raw.Close()
	})
}

// spliceChunk is how much one splice(2) run moves before the byte counters
// are updated.
const spliceChunk = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copy moves one direction until EOF (nil error) or failure.
func (pr *pair) copy(d direction) (int64, error) {
	c := pr.client
	var counter *atomic.Uint64
	var dst io.Writer
	var src io.Reader
	var dstTCP, srcTCP *net.TCPConn
	plain := c.tcp != nil && c.stream == c.raw
	if d == toPeer {
		counter, dst, src, dstTCP = &pr.s.stats.bytesToPeer, pr.peer.TCPConn, c.stream, pr.peer.TCPConn
		if plain {
			srcTCP = c.tcp
		}
	} else {
		counter, dst, src, srcTCP = &pr.s.stats.bytesToClient, c.stream, pr.peer.TCPConn, pr.peer.TCPConn
		if plain {
			dstTCP = c.tcp
		}
	}
	var total int64
	if d == toPeer && len(c.pending) > 0 {
		// Bytes the client sent right behind its ConnectionBind, which
		// the control-phase reader kept back from pion.
		n, err := pr.peer.Write(c.pending)
		total += int64(n)
		counter.Add(uint64(n))
		c.pending = nil
		if err != nil {
			return total, err
		}
	}
	if dstTCP != nil && srcTCP != nil {
		n, err := spliceCopy(dstTCP, srcTCP, counter)
		return total + n, err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			counter.Add(uint64(w))
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// spliceCopy moves src to dst inside the kernel (net.TCPConn.ReadFrom uses
// splice(2) for a TCP source), a chunk at a time so the counters move
// while a long stream runs.
func spliceCopy(dst, src *net.TCPConn, counter *atomic.Uint64) (int64, error) {
	var total int64
	for {
		lr := io.LimitedReader{R: src, N: spliceChunk}
		n, err := dst.ReadFrom(&lr)
		total += n
		counter.Add(uint64(n))
		if err != nil {
			return total, err
		}
		if lr.N > 0 { // the source ended before the chunk did
			return total, nil
		}
	}
}

// closeWrite passes a client-bound EOF on: TLS close_notify, then FIN.
func (c *clientConn) closeWrite() {
	if t, ok := c.stream.(*tls.Conn); ok {
		t.CloseWrite()
	}
	switch {
	case c.tcp != nil:
		c.tcp.CloseWrite()
	default:
		if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			c.raw.Close()
		}
	}
}
