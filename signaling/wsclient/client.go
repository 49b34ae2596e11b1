package wsclient

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/icetcp/icetcp/internal/proxy"
	"github.com/icetcp/icetcp/internal/quote"
	"github.com/icetcp/icetcp/signaling"
)

// DefaultPingInterval is how often a Client pings the rendezvous when
// Dialer.PingInterval is 0.
const DefaultPingInterval = 15 * time.Second

// clientInboxLimit bounds messages received but not yet taken by Recv. The
// server only relays what one peer sends, so reaching it means the agent
// stopped calling Recv while its peer kept talking.
const clientInboxLimit = 1 << 14

// Dialer holds options for connecting to a rendezvous. The zero value is
// ready to use; Dial uses it.
type Dialer struct {
	// HTTPClient performs the WebSocket handshake. nil: a client of
	// Go's default transport that verifies with TLSConfig and goes
	// through Proxy. When set, TLSConfig and Proxy are ignored.
	HTTPClient *http.Client
	// Proxy is how the rendezvous is reached: "http://[USER:PASS@]HOST[:PORT]"
	// asks an HTTP proxy for a tunnel with CONNECT (Basic credentials),
	// "socks5://[USER:PASS@]HOST[:PORT]" a SOCKS5 proxy, "direct" uses
	// none. Empty: from the environment as for an https request (ws://
	// too, since the WebSocket is always tunnelled): HTTPS_PROXY, else
	// ALL_PROXY, with NO_PROXY naming hosts reached directly; loopback is
	// never proxied. The host name goes to the proxy unresolved, and
	// wss:// is TLS to the rendezvous inside the tunnel. A proxy that
	// does not open the tunnel fails Dial with a *ProxyError.
	Proxy string
	// HTTPHeader is added to the handshake request.
	HTTPHeader http.Header
	// TLSConfig verifies a wss:// server, for example RootCAs holding a
	// private CA. nil: the system's roots. Ignored when HTTPClient is set.
	TLSConfig *tls.Config
	// Token, if set, is sent as "Authorization: Bearer <Token>" on the
	// upgrade request, for servers that require join tokens. A header and
	// not a URL parameter: URLs end up in proxy and access logs.
	Token string
	// PingInterval is how often the client pings the server; without a pong
	// within the interval the connection counts as lost. 0:
	// DefaultPingInterval; negative: no pings.
	PingInterval time.Duration
	// RoomKey, when set, joins the room that belongs to it
	// (signaling.RoomForKey of its public key; Dial's room must be that
	// name or empty) with a proof that this client holds it, signed over
	// the rendezvous's challenge for this connection. A rendezvous that
	// sends no challenge does not check proofs: Dial then fails with
	// signaling.ErrRoomProof rather than join a room anyone could take.
	RoomKey ed25519.PrivateKey
}

// Dial connects to a rendezvous at url (ws://host:port, wss://host:port,
// optionally with a path), joins room and returns once the server confirmed
// the join. Errors wrap the signaling sentinel of the server's refusal
// (ErrRoomFull, ErrUnknownRoom, ErrInvalidRoom, ErrTooManyRooms,
// ErrUnauthorized, ErrTooManyConnections, ErrRoomProof), or the dial error
// (a certificate the system does not trust is an x509 error: set
// Dialer.TLSConfig).
func Dial(ctx context.Context, url, room string) (*Client, error) {
	var d Dialer
	return d.Dial(ctx, url, room)
}

// Dial is like the package-level Dial with d's options.
func (d *Dialer) Dial(ctx context.Context, url, room string) (*Client, error) {
	if d.RoomKey != nil {
		pub, ok := d.RoomKey.Public().(ed25519.PublicKey)
		if !ok || len(d.RoomKey) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("%w: RoomKey is not an Ed25519 private key", signaling.ErrRoomProof)
		}
		if want := signaling.RoomForKey(pub); room == "" {
			room = want
		} else if room != want {
			return nil, fmt.Errorf("%w: room %s is not the room of RoomKey (%s)", signaling.ErrRoomProof, quote.Short(room), quote.Short(want))
		}
	}
	if !signaling.ValidRoom(room) {
		return nil, fmt.Errorf("%w: %s", signaling.ErrInvalidRoom, quote.Short(room))
	}
	hc, err := d.httpClient()
	if err != nil {
		return nil, err
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: d.header()})
	if hc != d.HTTPClient {
		hc.CloseIdleConnections() // a refused handshake may have left one
	}
	if err != nil {
		if refused := refusal(room, resp); refused != nil {
			return nil, refused
		}
		var pe *ProxyError
		if errors.As(err, &pe) && ctx.Err() == nil {
			// The proxy's own words, without the HTTP client's layers.
			return nil, fmt.Errorf("wsclient: dial %s: %w", url, pe)
		}
		return nil, fmt.Errorf("wsclient: dial %s: %w", url, err)
	}
	join := signaling.Control{Type: signaling.TypeJoin, Room: room}
	if d.RoomKey != nil {
		challenge, err := signaling.DecodeChallenge(resp.Header.Get(signaling.ChallengeHeader))
		if err != nil {
			ws.CloseNow() //nolint:errcheck // the proof error is what matters
			if resp.Header.Get(signaling.ChallengeHeader) == "" {
				err = fmt.Errorf("%w: the rendezvous at %s sends no join challenge, so it would let anyone take room %s: it predates key rooms", signaling.ErrRoomProof, url, quote.Short(room))
			}
			return nil, err
		}
		join.Proof = signaling.ProveJoin(d.RoomKey, room, challenge)
	}
	// Relayed messages passed the server's signaling.Decode, so they fit.
	ws.SetReadLimit(signaling.MaxMessageSize)
	joined, err := joinRoom(ctx, ws, join)
	if err != nil {
		ws.CloseNow() //nolint:errcheck // the join error is what matters
		return nil, err
	}
	relays, relaysErr := signaling.AnnouncedRelays(joined.Relays)
	c := &Client{
		ws:        ws,
		room:      room,
		members:   joined.Members,
		relays:    relays,
		relaysErr: relaysErr,
		in:        newInbox(),
		closed:    make(chan struct{}),
		readDone:  make(chan struct{}),
		pingDone:  make(chan struct{}),
	}
	ping := d.PingInterval
	if ping == 0 {
		ping = DefaultPingInterval
	}
	go c.readLoop()
	go c.keepalive(ping)
	return c, nil
}

// ProxyError is a tunnel the proxy (Dialer.Proxy) did not open: it names
// the proxy (without its password), the target and the proxy's answer
// (Status 407: credentials missing or wrong; 403: a target it forbids);
// Refused tells a refusal from a proxy that could not reach the target.
type ProxyError = proxy.Error

func (d *Dialer) httpClient() (*http.Client, error) {
	if d.HTTPClient != nil {
		return d.HTTPClient, nil
	}
	pick, err := proxy.Setting(d.Proxy)
	if err != nil {
		return nil, fmt.Errorf("wsclient: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A copy: the transport writes to its config (HTTP/2 protocols), and
	// the caller may share d.TLSConfig with other users (connect gives
	// the same one to its turns: servers).
	tr.TLSClientConfig = d.TLSConfig.Clone()
	// The tunnel is ours, not the transport's: the proxy's answer then
	// becomes a *ProxyError that names it, and ws:// is tunnelled too
	// (an HTTP proxy asked for ws:// as a plain request rarely passes the
	// upgrade).
	tr.Proxy = nil
	direct := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		u, err := pick(addr)
		if err != nil {
			return nil, err
		}
		if u == nil {
			return direct(ctx, network, addr)
		}
		return (&proxy.Dialer{URL: u}).DialContext(ctx, network, addr)
	}
	return &http.Client{Transport: tr}, nil
}

func (d *Dialer) header() http.Header {
	if d.Token == "" {
		return d.HTTPHeader
	}
	h := d.HTTPHeader.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Authorization", "Bearer "+d.Token)
	return h
}

// refusal turns a server's HTTP refusal of the upgrade (401, 429, 503 with
// an error message as body) into the matching sentinel; nil if resp is not
// such a refusal.
func refusal(room string, resp *http.Response) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols || resp.Body == nil {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	ctl, err := signaling.DecodeControl(b)
	if err != nil || ctl.Type != signaling.TypeError {
		return nil
	}
	return joinError(room, ctl)
}

// joinRoom sends the join and returns the server's joined answer.
func joinRoom(ctx context.Context, ws *websocket.Conn, join signaling.Control) (signaling.Control, error) {
	room := join.Room
	if err := ws.Write(ctx, websocket.MessageText, signaling.EncodeControl(join)); err != nil {
		return signaling.Control{}, fmt.Errorf("wsclient: join %q: %w", room, err)
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		return signaling.Control{}, fmt.Errorf("wsclient: join %q: %w", room, err)
	}
	ctl, err := signaling.DecodeControl(b)
	if err != nil {
		return signaling.Control{}, fmt.Errorf("wsclient: join %q: %w", room, err)
	}
	switch ctl.Type {
	case signaling.TypeJoined:
		return ctl, nil
	case signaling.TypeError:
		return signaling.Control{}, joinError(room, ctl)
	}
	return signaling.Control{}, fmt.Errorf("wsclient: join %q: %w", room, &signaling.MessageError{Problem: "server answered type " + quote.Short(string(ctl.Type))})
}

// Client is a signaling.Channel over a WebSocket to a rendezvous. Recv
// returns a TypePeerLeft message when the other member leaves (a new
// member may join the room later) and TypeError messages the server sends
// (for example CodeQueueFull). When the connection ends, Recv returns what
// was received and then the final error: a *CloseError if the server
// closed it.
type Client struct {
	ws        *websocket.Conn
	room      string
	members   int
	relays    []signaling.Relay
	relaysErr error
	in        *inbox

	closeOnce sync.Once
	closed    chan struct{} // closed by Close
	readDone  chan struct{} // closed when readLoop returns
	pingDone  chan struct{} // closed when keepalive returns
}

var _ signaling.Channel = (*Client)(nil)

// Room returns the joined room's name.
func (c *Client) Room() string { return c.room }

// Members returns how many members the room had right after this client
// joined: 2 means the peer was already there.
func (c *Client) Members() int { return c.members }

// Relays returns the TURN relays the rendezvous announced to this client
// in its joined answer, with the credentials it minted for it (nil when it
// announces none), and an error naming the announced relays left out as
// unusable (signaling.AnnouncedRelays).
func (c *Client) Relays() ([]signaling.Relay, error) { return c.relays, c.relaysErr }

// Send validates m and sends it. Cancelling ctx while the message is being
// written closes the connection (the WebSocket library cannot abandon a
// half-written frame).
func (c *Client) Send(ctx context.Context, m signaling.Message) error {
	select {
	case <-c.closed:
		return signaling.ErrClosed
	default:
	}
	if !m.Type.FromAgent() {
		return fmt.Errorf("%w: %q", signaling.ErrRendezvousOnly, m.Type)
	}
	b, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		select {
		case <-c.closed:
			return signaling.ErrClosed
		default:
		}
		return fmt.Errorf("wsclient: send %s: %w", m.Type, err)
	}
	return nil
}

// Recv returns the next message.
func (c *Client) Recv(ctx context.Context) (signaling.Message, error) {
	it, err := c.in.pop(ctx, c.closed)
	if err != nil {
		if err == signaling.ErrClosed || err == ctx.Err() { //nolint:errorlint // pop returns these unwrapped
			return signaling.Message{}, fmt.Errorf("wsclient: recv: %w", err)
		}
		return signaling.Message{}, err
	}
	return it.m, it.err
}

// Close sends a close frame, waits briefly for the server's answer and
// frees the connection and the client's goroutines. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		select {
		case <-c.readDone:
			// The connection is already gone: no handshake to wait for.
			c.ws.CloseNow() //nolint:errcheck // already closed
		default:
			c.ws.Close(websocket.StatusNormalClosure, "bye") //nolint:errcheck // best effort
		}
		<-c.readDone
		<-c.pingDone
	})
	return nil
}

func (c *Client) readLoop() {
	defer close(c.readDone)
	for {
		_, b, err := c.ws.Read(context.Background())
		if err != nil {
			c.in.fail(c.finalError(err))
			return
		}
		m, err := signaling.Decode(b) // an invalid message fails one Recv, not the Client
		if !c.in.push(inboxItem{m: m, err: err}, clientInboxLimit) {
			c.in.fail(fmt.Errorf("wsclient: recv: more than %d messages not taken by Recv", clientInboxLimit))
			c.ws.CloseNow() //nolint:errcheck // giving up on the connection
			return
		}
	}
}

func (c *Client) finalError(err error) error {
	select {
	case <-c.closed:
		return signaling.ErrClosed
	default:
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	return fmt.Errorf("wsclient: connection lost: %w", err)
}

func (c *Client) keepalive(interval time.Duration) {
	defer close(c.pingDone)
	if interval < 0 {
		select {
		case <-c.readDone:
		case <-c.closed:
		}
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.readDone:
			return
		case <-c.closed:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			err := c.ws.Ping(ctx)
			cancel()
			if err != nil {
				c.in.fail(fmt.Errorf("wsclient: connection lost: no pong within %v: %w", interval, err))
				c.ws.CloseNow() //nolint:errcheck // readLoop ends on it
				return
			}
		}
	}
}
