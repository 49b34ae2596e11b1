package relay

import (
	"net"
	"sync"
)

// chanListener is a net.Listener whose connections are handed over by the
// demultiplexer: it is how connections reach pion's TURN server and the
// stuntcp server, which both only take a listener.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	once   sync.Once
	onExit func() // called once, when Accept first reports the close: the consumer's loop is leaving
	exit   sync.Once
}

func newChanListener(addr net.Addr, onExit func()) *chanListener {
	if onExit == nil {
		onExit = func() {}
	}
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{}), onExit: onExit}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		l.exit.Do(l.onExit)
		return nil, net.ErrClosed
	}
}

// deliver hands c to the consumer; false when the listener is closed (the
// caller still owns c then).
func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }
