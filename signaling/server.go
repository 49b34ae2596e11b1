package signaling

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/logging"
)

// Server defaults.
const (
	DefaultPingInterval = 15 * time.Second
	DefaultJoinTimeout  = 10 * time.Second
	writeTimeout        = 10 * time.Second
)

// Server is the rendezvous: rooms of two agents. Each WebSocket connection
// joins a room first; then every message it sends is validated with Decode
// and relayed verbatim to the other member, or queued (DefaultQueueMessages,
// DefaultQueueBytes) until the other member joins. When a member leaves, the
// other receives a peer-left message; an empty room is deleted.
//
// Browsers are held to the WebSocket library's same-origin check; other
// clients send no Origin header and are not affected. Serve it over plain
// ws:// or behind a TLS-terminating proxy.
//
// The zero value is ready to use. Fields must not change after the first
// call to ServeHTTP.
type Server struct {
	// Rooms, when non-empty, lists the only rooms that can be joined; other
	// names are refused with "unknown-room". Nil or empty: rooms are
	// created on first join.
	Rooms []string
	// MaxMessageSize bounds one incoming message. A connection that sends a
	// larger one is closed with status 1009 and reason "message too large".
	// 0 or anything above the package's MaxMessageSize: MaxMessageSize,
	// because Decode would refuse larger messages anyway.
	MaxMessageSize int
	// MaxRooms bounds the number of rooms at once. 0: DefaultMaxRooms.
	MaxRooms int
	// LoggerFactory: nil means logging.NewDefaultLoggerFactory(). Scope
	// "icetcp-signal".
	LoggerFactory logging.LoggerFactory
	// PingInterval is how often each joined connection is pinged; one whose
	// pong does not come back within the interval is dropped, so a vanished
	// client frees its room. 0: DefaultPingInterval; negative: no pings.
	PingInterval time.Duration
	// JoinTimeout bounds the wait for a connection's join message.
	// 0: DefaultJoinTimeout.
	JoinTimeout time.Duration

	initOnce     sync.Once
	log          logging.LeveledLogger
	maxSize      int
	pingInterval time.Duration
	joinTimeout  time.Duration
	ctx          context.Context // cancelled by Close
	cancel       context.CancelFunc
	wg           sync.WaitGroup // one per ServeHTTP call in progress

	mu sync.Mutex
	// guarded by mu
	closed bool
	table  *roomTable[*serverConn]
}

var errServerClosing = errors.New("signaling: server closing")

func (s *Server) init() {
	s.initOnce.Do(func() {
		lf := s.LoggerFactory
		if lf == nil {
			lf = logging.NewDefaultLoggerFactory()
		}
		s.log = lf.NewLogger("icetcp-signal")
		s.maxSize = s.MaxMessageSize
		if s.maxSize <= 0 || s.maxSize > MaxMessageSize {
			s.maxSize = MaxMessageSize
		}
		maxRooms := s.MaxRooms
		if maxRooms <= 0 {
			maxRooms = DefaultMaxRooms
		}
		s.pingInterval = s.PingInterval
		if s.pingInterval == 0 {
			s.pingInterval = DefaultPingInterval
		}
		s.joinTimeout = s.JoinTimeout
		if s.joinTimeout <= 0 {
			s.joinTimeout = DefaultJoinTimeout
		}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.table = newRoomTable[*serverConn](s.Rooms, maxRooms, DefaultQueueMessages, DefaultQueueBytes)
	})
}

// Close closes every connection (status 1001, "server closing") and waits
// until all of their goroutines have returned. Later connections are
// refused with HTTP 503.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// serverConn is one member connection.
type serverConn struct {
	s      *Server
	ws     *websocket.Conn
	remote string
	out    *outbox
	done   chan struct{} // closed when the read loop has ended
}

// ServeHTTP upgrades the request to a WebSocket and serves that member
// until it leaves. It returns only when all of the connection's goroutines
// have ended.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, errServerClosing.Error(), http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1) // under mu so that it cannot race with Close's Wait
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debugf("accept %s: %v", r.RemoteAddr, err)
		return
	}
	// The library's own limit would close with its own reason text; ours
	// (readFrame) triggers first and says "message too large".
	ws.SetReadLimit(int64(s.maxSize) + 1)
	c := &serverConn{s: s, ws: ws, remote: r.RemoteAddr, out: newOutbox(), done: make(chan struct{})}
	defer ws.CloseNow() //nolint:errcheck // a no-op when already closed

	if !c.join() {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.writeLoop() }()
	go func() { defer wg.Done(); c.keepalive() }()

	c.readLoop()

	s.mu.Lock()
	if peer, ok := s.table.leave(c); ok {
		peer.out.push(peerLeftFrame)
	}
	s.mu.Unlock()
	c.out.close()
	close(c.done)
	wg.Wait()
	s.log.Debugf("%s left", c.remote)
}

// join reads the join message and enters the room, or answers with an
// error and closes. It reports whether the connection joined.
func (c *serverConn) join() bool {
	s := c.s
	ctx, cancel := context.WithTimeout(s.ctx, s.joinTimeout)
	b, err := c.readFrame(ctx)
	cancel()
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			c.closeTooLarge(err)
		}
		s.log.Debugf("%s: no join: %v", c.remote, err)
		return false
	}
	ctl, err := decodeControl(b)
	if err == nil && ctl.Type != typeJoin {
		err = fmt.Errorf("%w: first message must be join, got type %s", ErrNotJoined, quoteShort(string(ctl.Type)))
	}
	if err == nil {
		s.mu.Lock()
		var members int
		var flush [][]byte
		if s.closed {
			err = errServerClosing
		} else if members, flush, err = s.table.join(ctl.Room, c); err == nil {
			// Queue the answer and the waiting messages before releasing
			// the lock, so nothing relayed later can overtake them.
			c.out.push(encodeControl(control{Type: typeJoined, Room: ctl.Room, Members: members}))
			for _, f := range flush {
				c.out.push(f)
			}
		}
		s.mu.Unlock()
		if err == nil {
			s.log.Debugf("%s joined room %q (%d members, %d queued messages)", c.remote, ctl.Room, members, len(flush))
			return true
		}
	}
	s.log.Debugf("%s: join refused: %v", c.remote, err)
	ctx, cancel = context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if c.ws.Write(ctx, websocket.MessageText, errorFrame(err)) == nil {
		c.ws.Close(websocket.StatusPolicyViolation, codeOf(err)) //nolint:errcheck // closing anyway
	}
	return false
}

// readLoop validates and relays messages until the connection ends.
func (c *serverConn) readLoop() {
	for {
		// No deadline here: keepalive notices a vanished client.
		b, err := c.readFrame(context.Background())
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				c.closeTooLarge(err)
			} else if s := websocket.CloseStatus(err); s != websocket.StatusNormalClosure && s != websocket.StatusGoingAway {
				c.s.log.Debugf("%s: read: %v", c.remote, err)
			}
			return
		}
		m, err := Decode(b)
		if err == nil && !m.Type.FromAgent() {
			err = fmt.Errorf("%w: %q", ErrRendezvousOnly, m.Type)
		}
		if err != nil {
			c.s.log.Debugf("%s: dropping message: %v", c.remote, err)
			c.out.push(errorFrame(err))
			continue
		}
		c.s.relay(c, b)
	}
}

func (s *Server) relay(from *serverConn, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	to, delivered, err := s.table.relay(from, b)
	switch {
	case err != nil:
		from.out.push(errorFrame(err))
	case delivered:
		to.out.push(b) // on overflow the receiver's writer cuts it off
	}
}

// readFrame reads one whole message of at most s.maxSize bytes.
func (c *serverConn) readFrame(ctx context.Context) ([]byte, error) {
	_, r, err := c.ws.Reader(ctx)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(c.s.maxSize)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > c.s.maxSize {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.s.maxSize)
	}
	return b, nil
}

func (c *serverConn) closeTooLarge(err error) {
	c.s.log.Warnf("%s: %v; closing", c.remote, err)
	c.ws.Close(websocket.StatusMessageTooBig, "message too large") //nolint:errcheck // closing anyway
}

// writeLoop writes queued frames; it owns all data writes to the socket.
func (c *serverConn) writeLoop() {
	for {
		b, ok, overflow := c.out.next()
		if overflow {
			c.s.log.Warnf("%s: send queue overflow; closing", c.remote)
			c.ws.Close(websocket.StatusTryAgainLater, "send queue overflow") //nolint:errcheck // closing anyway
			return
		}
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
		err := c.ws.Write(ctx, websocket.MessageText, b)
		cancel()
		if err != nil {
			c.ws.CloseNow() //nolint:errcheck // the read loop sees the close and ends
			return
		}
	}
}

// keepalive pings the client and performs the close when the server shuts down.
func (c *serverConn) keepalive() {
	var tick <-chan time.Time
	if c.s.pingInterval > 0 {
		t := time.NewTicker(c.s.pingInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-c.done:
			return
		case <-c.s.ctx.Done():
			c.ws.Close(websocket.StatusGoingAway, "server closing") //nolint:errcheck // closing anyway
			return
		case <-tick:
			ctx, cancel := context.WithTimeout(c.s.ctx, c.s.pingInterval)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil && c.s.ctx.Err() == nil {
				select {
				case <-c.done:
				default:
					c.s.log.Infof("%s: no pong within %v; dropping", c.remote, c.s.pingInterval)
				}
				c.ws.CloseNow() //nolint:errcheck // the read loop sees the close and ends
				return
			}
		}
	}
}
