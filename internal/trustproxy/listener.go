package trustproxy

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Listener defaults.
const (
	// DefaultHeaderTimeout bounds the wait for a trusted proxy's header.
	DefaultHeaderTimeout = 5 * time.Second
	// DefaultMaxPending bounds the connections from trusted proxies whose
	// header is being read; more are reset.
	DefaultMaxPending = 1024
)

// Listener hands on the connections of a TCP listener, taking the client's
// address from the PROXY v2 header of those that come from a trusted
// proxy. Connections from anyone else are returned at once, untouched.
// Headers are read on a goroutine per connection, so a slow proxy never
// holds up the others.
type Listener struct {
	net.Listener
	trusted Set
	timeout time.Duration
	max     int64

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	errOnce   sync.Once
	err       error // Accept's error once the underlying listener failed
	wg        sync.WaitGroup
	pending   atomic.Int64

	mu      sync.Mutex                // guards reading
	reading map[*net.TCPConn]struct{} // headers being read: Close closes them

	proxied, refused atomic.Uint64
}

// Listen starts handing on l's connections; with an empty trusted set it
// returns l itself. timeout and maxPending: 0 means the defaults.
func Listen(l net.Listener, trusted Set, timeout time.Duration, maxPending int) net.Listener {
	if len(trusted) == 0 {
		return l
	}
	if timeout <= 0 {
		timeout = DefaultHeaderTimeout
	}
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	tl := &Listener{Listener: l, trusted: trusted, timeout: timeout, max: int64(maxPending),
		conns: make(chan net.Conn), done: make(chan struct{}), reading: map[*net.TCPConn]struct{}{}}
	tl.wg.Add(1)
	go tl.loop()
	return tl
}

func (l *Listener) loop() {
	defer l.wg.Done()
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed) {
				select {
				case <-time.After(50 * time.Millisecond): // EMFILE: wait for descriptors
					continue
				case <-l.done:
				}
			}
			l.errOnce.Do(func() { l.err = err })
			close(l.conns)
			return
		}
		tc, ok := c.(*net.TCPConn)
		if !ok || !l.trusted.Contains(remoteAddr(c).Addr()) {
			l.deliver(c)
			continue
		}
		if l.pending.Add(1) > l.max {
			l.pending.Add(-1)
			l.refused.Add(1)
			tc.SetLinger(0)
			tc.Close()
			continue
		}
		l.mu.Lock()
		if isClosed(l.done) {
			l.mu.Unlock()
			tc.Close()
			continue
		}
		l.reading[tc] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() {
			defer l.wg.Done()
			pc, err := l.unwrap(tc)
			l.mu.Lock()
			delete(l.reading, tc)
			l.mu.Unlock()
			l.pending.Add(-1)
			if err != nil {
				l.refused.Add(1)
				tc.SetLinger(0)
				tc.Close()
				return
			}
			l.deliver(pc)
		}()
	}
}

// unwrap reads the header of a trusted proxy's connection.
func (l *Listener) unwrap(tc *net.TCPConn) (net.Conn, error) {
	if err := tc.SetReadDeadline(time.Now().Add(l.timeout)); err != nil {
		return nil, err
	}
	h, taken, ok, err := ReadHeader(tc)
	if err != nil {
		return nil, err
	}
	if err := tc.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	c := &Conn{TCPConn: tc, remote: tc.RemoteAddr(), local: tc.LocalAddr(), prefix: taken}
	if ok && !h.Local {
		l.proxied.Add(1)
		c.remote, c.local = net.TCPAddrFromAddrPort(h.Source), net.TCPAddrFromAddrPort(h.Destination)
	}
	return c, nil
}

func (l *Listener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// Accept returns the next connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c, ok := <-l.conns:
		if ok {
			return c, nil
		}
		// loop set err before it closed conns
		if !isClosed(l.done) {
			return nil, l.err
		}
	case <-l.done:
	}
	return nil, net.ErrClosed
}

// Close closes the listener and every connection not yet accepted, and
// waits for the goroutines reading headers.
func (l *Listener) Close() error {
	err := net.ErrClosed
	l.closeOnce.Do(func() {
		l.mu.Lock()
		close(l.done)
		for c := range l.reading {
			c.Close()
		}
		l.mu.Unlock()
		err = l.Listener.Close()
		l.wg.Wait()
	})
	return err
}

// Stats counts connections whose PROXY header named the client (Proxied)
// and those refused: a bad header, none in time, too many waiting.
func (l *Listener) Stats() (proxied, refused uint64) { return l.proxied.Load(), l.refused.Load() }

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func remoteAddr(c net.Conn) netip.AddrPort {
	if t, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
