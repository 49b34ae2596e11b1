package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/limits"
	"github.com/icetcp/icetcp/internal/quote"
	"github.com/icetcp/icetcp/signaling"
)

// Server defaults.
const (
	// DefaultPingInterval is how often the server pings each joined
	// connection when Server.PingInterval is 0.
	DefaultPingInterval = 15 * time.Second
	DefaultJoinTimeout  = 10 * time.Second
	writeTimeout        = 10 * time.Second
)

// Server is the rendezvous: rooms of two agents. Each WebSocket connection
// joins a room first; then every message it sends is validated with
// signaling.Decode and relayed verbatim to the other member, or queued
// (DefaultQueueMessages, DefaultQueueBytes) until the other member joins.
// When a member leaves, the other receives a peer-left message; an empty
// room is deleted.
//
// No single client can take the server: connections and rooms are capped
// overall and per source address, a connection must join within
// JoinTimeout, queues are bounded, idle rooms expire, and with TokenKey set
// only holders of a token minted with that key get in. Refusals are counted
// by reason (Stats) and logged at most once per reason per
// RefusalLogInterval.
//
// Browsers are held to the WebSocket library's same-origin check; other
// clients send no Origin header and are not affected. Serve it over TLS
// (wss://) with http.Server.ServeTLS, or behind a TLS-terminating proxy; the
// per-source limits then see the proxy's address unless the proxy is in
// TrustedProxies (its Forwarded or X-Forwarded-For header then names the
// client).
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
	// 0 or anything above signaling.MaxMessageSize: that, because
	// signaling.Decode would refuse larger messages anyway.
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
	// TokenKey, when at least MinTokenKeyLen bytes, makes every connection
	// present a token minted with it (MintToken) as "Authorization: Bearer
	// <token>"; others are refused with HTTP 401 and code "unauthorized".
	// Empty: no token needed. A non-empty key shorter than MinTokenKeyLen
	// refuses everyone rather than trusting a guessable key.
	TokenKey []byte
	// MaxConns bounds WebSocket connections at once. 0: DefaultMaxConns.
	MaxConns int
	// MaxConnsPerSource bounds connections from one source address (IPv4
	// address or IPv6 /64). 0: DefaultMaxConnsPerSource.
	MaxConnsPerSource int
	// MaxRoomsPerSource bounds the rooms opened from one source address.
	// 0: DefaultMaxRoomsPerSource.
	MaxRoomsPerSource int
	// RoomIdleTimeout closes the members of a room where nothing was joined
	// or relayed for this long, with code "room-expired"; it is checked at
	// each ping, so pings must be on. 0: DefaultRoomIdleTimeout; negative:
	// rooms never expire.
	RoomIdleTimeout time.Duration
	// RefusalLogInterval: refusals are logged at most once per reason per
	// interval. 0: DefaultRefusalLogInterval.
	RefusalLogInterval time.Duration
	// Cluster, when set, shares the rooms with the other rendezvous nodes
	// of a cluster through NATS (NewCluster), so that two members meet
	// whichever node each reached. The Server takes it over: Close closes
	// it. nil: the rooms live in this process.
	Cluster *Cluster
	// Relays, when set, are TURN relays named in every joined answer, with
	// TURN REST credentials minted for the member (see Relays). nil: none.
	Relays *Relays
	// TrustedProxies are the addresses of proxies and load balancers whose
	// word on the client's address is taken (Forwarded, X-Forwarded-For):
	// the per-source limits then count the client, not the proxy. Nobody
	// else's headers are read. Empty: the TCP peer is the client.
	TrustedProxies []netip.Prefix

	initOnce          sync.Once
	log               logging.LeveledLogger
	maxSize           int
	maxConns          int
	maxConnsPerSource int
	pingInterval      time.Duration
	joinTimeout       time.Duration
	roomIdle          time.Duration
	ctx               context.Context // cancelled by Close
	cancel            context.CancelFunc
	wg                sync.WaitGroup // one per ServeHTTP call in progress

	router router
	relays *relayMinter // nil: no relays announced

	mu sync.Mutex
	// guarded by mu
	closed    bool
	draining  bool // Drain: no new connections, members stay
	conns     *connTable
	joins     uint64
	relayed   uint64
	refused   *refusals          // connections and joins never admitted
	dropped   *refusals          // joined connections cut by the server
	https     []*http.Server     // of Serve
	listeners []*limits.Listener // of Serve
}

// peerLeftFrame tells the member left in a room that its peer went away.
var peerLeftFrame = signaling.EncodeControl(signaling.Control{Type: signaling.TypePeerLeft})

var (
	errServerClosing = fmt.Errorf("rendezvous: server closing: %w", signaling.ErrUnavailable)
	errNotWebSocket  = errors.New("rendezvous: not a WebSocket upgrade request; this is an icetcp rendezvous (icetcp connect --signal URL)")
)

func (s *Server) init() {
	s.initOnce.Do(func() {
		lf := s.LoggerFactory
		if lf == nil {
			lf = logging.NewDefaultLoggerFactory()
		}
		s.log = lf.NewLogger("icetcp-signal")
		s.maxSize = s.MaxMessageSize
		if s.maxSize <= 0 || s.maxSize > signaling.MaxMessageSize {
			s.maxSize = signaling.MaxMessageSize
		}
		orDefault := func(v, d int) int {
			if v <= 0 {
				return d
			}
			return v
		}
		s.pingInterval = s.PingInterval
		if s.pingInterval == 0 {
			s.pingInterval = DefaultPingInterval
		}
		s.joinTimeout = s.JoinTimeout
		if s.joinTimeout <= 0 {
			s.joinTimeout = DefaultJoinTimeout
		}
		s.roomIdle = s.RoomIdleTimeout
		if s.roomIdle == 0 {
			s.roomIdle = DefaultRoomIdleTimeout
		}
		logEvery := s.RefusalLogInterval
		if logEvery <= 0 {
			logEvery = DefaultRefusalLogInterval
		}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		lim := roomLimits{
			maxRooms:      orDefault(s.MaxRooms, DefaultMaxRooms),
			maxPerSource:  orDefault(s.MaxRoomsPerSource, DefaultMaxRoomsPerSource),
			queueMessages: DefaultQueueMessages,
			queueBytes:    DefaultQueueBytes,
		}
		if s.Relays != nil {
			s.relays = newRelayMinter(*s.Relays)
		}
		if s.Cluster != nil {
			s.Cluster.start(s.Rooms, lim, s.joinedAnswer, lf)
			s.router = s.Cluster
		} else {
			s.router = &memoryRouter{table: newRoomTable[*serverConn](s.Rooms, lim), joinedAnswer: s.joinedAnswer}
		}
		s.maxConns = orDefault(s.MaxConns, DefaultMaxConns)
		s.maxConnsPerSource = orDefault(s.MaxConnsPerSource, DefaultMaxConnsPerSource)
		s.conns = newConnTable(s.maxConns, s.maxConnsPerSource)
		s.refused = newRefusals(s.log.Warnf, logEvery)
		s.dropped = newRefusals(s.log.Infof, logEvery)
	})
}

// Close closes every connection (status 1001, "server closing") and the
// listeners given to Serve, and waits until all of their goroutines have
// returned. Later connections are refused with HTTP 503.
func (s *Server) Close() error {
	s.init()
	s.mu.Lock()
	s.closed = true
	https := s.https
	s.mu.Unlock()
	s.cancel()
	var errs []error
	for _, hs := range https {
		// Closes the listener and every connection that is not a
		// WebSocket yet; members are closed through s.ctx.
		errs = append(errs, hs.Close())
	}
	s.wg.Wait()
	errs = append(errs, s.router.close())
	s.refused.log.Close()
	s.dropped.log.Close()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rendezvous: close: %w", err)
	}
	return nil
}

// serverConn is one member connection.
type serverConn struct {
	s         *Server
	ws        *websocket.Conn
	remote    string
	source    string // the key of per-source limits
	subject   string // of the join token, if any
	challenge []byte // what a join to a key room must sign
	out       *outbox
	done      chan struct{} // closed when the read loop has ended
}

// ServeHTTP upgrades the request to a WebSocket and serves that member
// until it leaves. It returns only when all of the connection's goroutines
// have ended.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	source := sourceOf(s.clientAddr(r))
	if !isUpgrade(r) {
		// Nothing else is served here: answer, and do not keep the
		// connection (issue 14: 3,000 idle keep-alive connections after a
		// plain GET each were all still open a minute later).
		w.Header().Set("Upgrade", "websocket")
		s.refuseHTTP(w, http.StatusUpgradeRequired, errNotWebSocket, ReasonNotWebSocket, source)
		return
	}
	subject, err := s.authorize(r, time.Now())
	if err != nil {
		s.refuseHTTP(w, http.StatusUnauthorized, err, ReasonUnauthorized, source)
		return
	}
	s.mu.Lock()
	if s.closed || s.draining {
		s.mu.Unlock()
		s.refuseHTTP(w, http.StatusServiceUnavailable, errServerClosing, ReasonServerClosing, source)
		return
	}
	if err := s.conns.add(source); err != nil {
		s.mu.Unlock()
		status, reason := http.StatusServiceUnavailable, ReasonTooManyConns
		if errors.Is(err, errPerSource) {
			status, reason = http.StatusTooManyRequests, ReasonTooManyConnsPerSource
		}
		s.refuseHTTP(w, status, err, reason, source)
		return
	}
	s.wg.Add(1) // under mu so that it cannot race with Close's Wait
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.conns.remove(source)
		s.mu.Unlock()
	}()

	// Every connection gets a challenge of its own: a proof for a key
	// room signs it, so a join captured elsewhere proves nothing here.
	challenge := signaling.NewChallenge()
	w.Header().Set(signaling.ChallengeHeader, signaling.EncodeChallenge(challenge))
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debugf("accept %s: %v", r.RemoteAddr, err)
		return
	}
	// The library's own limit would close with its own reason text; ours
	// (readFrame) triggers first and says "message too large".
	ws.SetReadLimit(int64(s.maxSize) + 1)
	remote := r.RemoteAddr
	if client := s.clientAddr(r); client != remote {
		remote = client + " via " + remote
	}
	if subject != "" {
		remote += " (" + quote.Short(subject) + ")"
	}
	c := &serverConn{s: s, ws: ws, remote: remote, source: source, subject: subject, challenge: challenge, out: newOutbox(), done: make(chan struct{})}
	defer ws.CloseNow() //nolint:errcheck // a no-op when already closed

	if !c.join() {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.writeLoop() }()
	go func() { defer wg.Done(); c.keepalive() }()

	c.readLoop()

	s.router.leave(c)
	c.out.close()
	close(c.done)
	wg.Wait()
	s.log.Debugf("%s left", c.remote)
}

// join reads the join message and enters the room, or answers with an
// error and closes. It reports whether the connection joined.
func (c *serverConn) join() bool {
	s := c.s
	// Not a read context: the WebSocket library drops the connection when
	// one expires, and the client is owed a close frame that says why.
	timedOut := make(chan struct{})
	timer := time.AfterFunc(s.joinTimeout, func() {
		defer close(timedOut)
		s.refuse(ReasonJoinTimeout, c.source, fmt.Errorf("%s: %w within %v", c.remote, signaling.ErrJoinTimeout, s.joinTimeout))
		c.ws.Close(websocket.StatusPolicyViolation, signaling.CodeJoinTimeout) //nolint:errcheck // closing anyway
	})
	b, err := c.readFrame(s.ctx)
	if !timer.Stop() {
		<-timedOut
		return false
	}
	if err != nil {
		if errors.Is(err, signaling.ErrTooLarge) {
			s.refuse(ReasonMessageTooLarge, c.source, err)
			c.closeTooLarge(err)
		}
		s.log.Debugf("%s: no join: %v", c.remote, err)
		return false
	}
	ctl, err := signaling.DecodeControl(b)
	if err == nil && ctl.Type != signaling.TypeJoin {
		err = fmt.Errorf("%w: first message must be join, got type %s", signaling.ErrNotJoined, quote.Short(string(ctl.Type)))
	}
	if err == nil && signaling.IsKeyRoom(ctl.Room) {
		err = signaling.VerifyJoin(ctl.Room, ctl.Proof, c.challenge)
	}
	if err == nil {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			err = errServerClosing
		} else if err = s.router.join(s.ctx, c, ctl.Room, c.source, time.Now()); err == nil {
			s.mu.Lock()
			s.joins++
			s.mu.Unlock()
			s.log.Debugf("%s joined room %q", c.remote, ctl.Room)
			return true
		}
	}
	s.refuse(joinReason(err), c.source, err)
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if c.ws.Write(ctx, websocket.MessageText, signaling.EncodeError(err)) == nil {
		c.ws.Close(websocket.StatusPolicyViolation, signaling.CodeOf(err)) //nolint:errcheck // closing anyway
	}
	return false
}

// readLoop validates and relays messages until the connection ends.
func (c *serverConn) readLoop() {
	for {
		// No deadline here: keepalive notices a vanished client.
		b, err := c.readFrame(context.Background())
		if err != nil {
			if errors.Is(err, signaling.ErrTooLarge) {
				c.s.drop(ReasonMessageTooLarge, c.source, err)
				c.closeTooLarge(err)
			} else if s := websocket.CloseStatus(err); s != websocket.StatusNormalClosure && s != websocket.StatusGoingAway {
				c.s.log.Debugf("%s: read: %v", c.remote, err)
			}
			return
		}
		m, err := signaling.Decode(b)
		if err == nil && !m.Type.FromAgent() {
			err = fmt.Errorf("%w: %q", signaling.ErrRendezvousOnly, m.Type)
		}
		if err != nil {
			c.s.log.Debugf("%s: dropping message: %v", c.remote, err)
			c.out.push(signaling.EncodeError(err))
			continue
		}
		c.s.relay(c, b)
	}
}

func (s *Server) relay(from *serverConn, b []byte) {
	if err := s.router.relay(from, b, time.Now()); err != nil {
		from.out.push(signaling.EncodeError(err))
		return
	}
	s.mu.Lock()
	s.relayed++ // delivered, or queued for the peer
	s.mu.Unlock()
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
		return nil, fmt.Errorf("%w: more than %d bytes", signaling.ErrTooLarge, c.s.maxSize)
	}
	return b, nil
}

func (c *serverConn) closeTooLarge(err error) {
	c.s.log.Debugf("%s: %v; closing", c.remote, err)
	c.ws.Close(websocket.StatusMessageTooBig, "message too large") //nolint:errcheck // closing anyway
}

// writeLoop writes queued frames; it owns all data writes to the socket.
func (c *serverConn) writeLoop() {
	for {
		b, ok, overflow := c.out.next()
		if overflow {
			c.s.drop(ReasonSendQueueOverflow, c.source, fmt.Errorf("%s: send queue overflow", c.remote))
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
					c.s.drop(ReasonPongTimeout, c.source, fmt.Errorf("%s: no pong within %v", c.remote, c.s.pingInterval))
				}
				c.ws.CloseNow() //nolint:errcheck // the read loop sees the close and ends
				return
			}
			if c.expired(time.Now()) {
				return
			}
		}
	}
}

// expired closes the connection if its room has been idle for longer than
// RoomIdleTimeout, and reports whether it did.
func (c *serverConn) expired(now time.Time) bool {
	s := c.s
	if s.roomIdle < 0 {
		return false
	}
	if !s.router.idle(c, now, s.roomIdle) {
		return false
	}
	s.drop(ReasonRoomExpired, c.source, fmt.Errorf("%s: %w: nothing relayed for %v", c.remote, signaling.ErrRoomExpired, s.roomIdle))
	c.ws.Close(websocket.StatusPolicyViolation, signaling.CodeRoomExpired) //nolint:errcheck // closing anyway
	return true
}

// authorize checks the request's token when the server requires one and
// returns its subject.
func (s *Server) authorize(r *http.Request, now time.Time) (subject string, err error) {
	if len(s.TokenKey) == 0 {
		return "", nil
	}
	if len(s.TokenKey) < MinTokenKeyLen {
		return "", fmt.Errorf("%w: the server's token key is shorter than %d bytes", signaling.ErrUnauthorized, MinTokenKeyLen)
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	t, err := ParseToken(s.TokenKey, strings.TrimSpace(tok), now)
	if err != nil {
		return "", err
	}
	return t.Subject, nil
}

// refuseHTTP answers a request the server does not upgrade. The body is
// the same error message a refused join gets, so a client's Dial reports
// the code.
func (s *Server) refuseHTTP(w http.ResponseWriter, status int, err error, reason, source string) {
	s.refuse(reason, source, err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Connection", "close") // a refused client does not keep a socket
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="icetcp"`)
	}
	w.WriteHeader(status)
	w.Write(signaling.EncodeError(err)) //nolint:errcheck // the client may be gone
}

// refuse counts a connection or join the server did not admit, and logs
// it if its reason's line is due.
func (s *Server) refuse(reason, source string, err error) {
	s.count(s.refused, reason, source, err)
}

// drop counts a joined connection the server cut, logged like refusals.
func (s *Server) drop(reason, source string, err error) {
	s.count(s.dropped, reason, source, err)
}

func (s *Server) count(r *refusals, reason, source string, err error) {
	s.mu.Lock()
	r.total[reason]++
	s.mu.Unlock()
	r.log.Note(reason, fmt.Sprintf("%s: %v", source, err))
}

// joinReason is the Stats reason for a refused join.
func joinReason(err error) string {
	switch {
	case errors.Is(err, signaling.ErrTooManyRooms) && errors.Is(err, errPerSource):
		return ReasonTooManyRoomsPerSource
	case errors.Is(err, signaling.ErrTooManyRooms):
		return ReasonTooManyRooms
	case errors.Is(err, signaling.ErrRoomFull):
		return ReasonRoomFull
	case errors.Is(err, signaling.ErrUnknownRoom):
		return ReasonUnknownRoom
	case errors.Is(err, errServerClosing):
		return ReasonServerClosing
	case errors.Is(err, signaling.ErrRoomProof):
		return ReasonRoomProof
	case errors.Is(err, signaling.ErrUnavailable):
		return ReasonUnavailable
	}
	return ReasonInvalidJoin
}

// kick closes a joined member the router can no longer serve, with the
// wire code of err as the close reason, counted as a drop.
func (c *serverConn) kick(reason string, err error) {
	c.s.drop(reason, c.source, fmt.Errorf("%s: %w", c.remote, err))
	c.ws.Close(websocket.StatusTryAgainLater, signaling.CodeOf(err)) //nolint:errcheck // closing anyway
}
