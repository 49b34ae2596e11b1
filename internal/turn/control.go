package turn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
)

// maxAuthRetries bounds how often one request is sent again after a 401
// challenge or a 438 Stale Nonce (RFC 8489 §9.2); a server that keeps
// answering so is broken, not slow.
const maxAuthRetries = 3

// control is the client end of the control connection (RFC 6062 §4.1).
//
// One goroutine, run, reads it: it hands each response to the transaction
// waiting for it and each ConnectionAttempt indication to onAttempt. Any
// goroutine may send a request: it registers its transaction ID, writes the
// whole message (net.Conn and tls.Conn serialise concurrent Writes), then
// waits for run to deliver the answer. Over TCP a request is sent once and
// never retransmitted (RFC 8489 §6.2.2): the transport does that, and a
// retransmitted Connect would be answered 446 Connection Already Exists
// while the first is still in progress.
type control struct {
	conn   net.Conn
	server string // for messages
	log    logging.LeveledLogger
	user   string
	pass   string
	// onAttempt receives ConnectionAttempt indications (RFC 6062 §4.4); it
	// runs on the reading goroutine and must not block.
	onAttempt func(peer netip.AddrPort, cid uint32)
	dead      chan struct{} // closed when run returns

	mu      sync.Mutex // guards following
	pending map[[stun.TransactionIDSize]byte]chan *stun.Message
	realm   stun.Realm
	nonce   stun.Nonce
	key     stun.MessageIntegrity // nil until the server's first 401
	readErr error                 // why run returned
}

func newControl(conn net.Conn, server, user, pass string, log logging.LeveledLogger) *control {
	return &control{
		conn: conn, server: server, log: log, user: user, pass: pass,
		onAttempt: func(netip.AddrPort, uint32) {},
		dead:      make(chan struct{}),
		pending:   make(map[[stun.TransactionIDSize]byte]chan *stun.Message),
	}
}

// run reads the control connection until it fails or is closed.
func (c *control) run() {
	defer close(c.dead)
	for {
		m, err := readMessage(c.conn)
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		switch m.Type.Class {
		case stun.ClassSuccessResponse, stun.ClassErrorResponse:
			c.mu.Lock()
			ch, ok := c.pending[m.TransactionID]
			delete(c.pending, m.TransactionID)
			c.mu.Unlock()
			if ok {
				ch <- m // buffered: never blocks
			} else {
				c.log.Debugf("%s: %s for no pending transaction (late answer)", c.server, m.Type)
			}
		case stun.ClassIndication:
			if m.Type.Method != stun.MethodConnectionAttempt {
				c.log.Debugf("%s: ignoring %s", c.server, m.Type)
				continue
			}
			peer, err := getXORAddr(m, stun.AttrXORPeerAddress)
			if err != nil {
				c.log.Warnf("%s: ConnectionAttempt: %v", c.server, err)
				continue
			}
			cid, err := getConnectionID(m)
			if err != nil {
				c.log.Warnf("%s: ConnectionAttempt from %s: %v", c.server, peer, err)
				continue
			}
			c.onAttempt(peer, cid)
		default:
			c.log.Debugf("%s: ignoring %s", c.server, m.Type)
		}
	}
}

// deadErr says why the control connection stopped.
func (c *control) deadErr() error {
	c.mu.Lock()
	err := c.readErr
	c.mu.Unlock()
	switch {
	case err == nil:
		return errors.New("control connection closed")
	case errors.Is(err, io.EOF):
		return errors.New("server closed the control connection")
	default:
		return fmt.Errorf("control connection: %w", err)
	}
}

// roundTrip sends m and waits for the answer with its transaction ID.
func (c *control) roundTrip(ctx context.Context, m *stun.Message) (*stun.Message, error) {
	ch := make(chan *stun.Message, 1)
	c.mu.Lock()
	c.pending[m.TransactionID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, m.TransactionID)
		c.mu.Unlock()
	}()
	if _, err := c.conn.Write(m.Raw); err != nil {
		select {
		case <-c.dead:
			return nil, c.deadErr()
		default:
			return nil, fmt.Errorf("send %s: %w", m.Type, err)
		}
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.dead:
		select {
		case r := <-ch: // answered just before the connection ended
			return r, nil
		default:
			return nil, c.deadErr()
		}
	}
}

// request sends a request of method with attrs, authenticated once the
// server has challenged us (RFC 8489 §9.2), and returns the server's
// answer, success or error response. A 401 challenge to an unauthenticated
// request and a 438 Stale Nonce are answered by sending it again with the
// realm and nonce they carry. Success responses to authenticated requests
// must carry a valid MESSAGE-INTEGRITY.
func (c *control) request(ctx context.Context, method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	for try := 0; ; try++ {
		m, key, err := c.build(method, attrs)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(ctx, m)
		if err != nil {
			return nil, err
		}
		if resp.Type.Class == stun.ClassErrorResponse {
			code, _ := errorCode(resp)
			challenged := code == int(stun.CodeUnauthorized) && key == nil && c.user != ""
			if (challenged || code == int(stun.CodeStaleNonce)) && try < maxAuthRetries {
				if err := c.learn(resp); err != nil {
					return nil, fmt.Errorf("%s %d: %w", method, code, err)
				}
				continue
			}
			return resp, nil
		}
		if key != nil {
			if err := key.Check(resp); err != nil {
				return nil, fmt.Errorf("%s response fails MESSAGE-INTEGRITY: %w", method, err)
			}
		}
		return resp, nil
	}
}

// build encodes a request with the current credentials, if any.
func (c *control) build(method stun.Method, attrs []stun.Setter) (*stun.Message, stun.MessageIntegrity, error) {
	c.mu.Lock()
	realm, nonce, key := c.realm, c.nonce, c.key
	c.mu.Unlock()
	setters := make([]stun.Setter, 0, len(attrs)+7)
	setters = append(setters, stun.TransactionID, stun.NewType(method, stun.ClassRequest))
	setters = append(setters, attrs...)
	if key != nil {
		// MESSAGE-INTEGRITY covers what precedes it; FINGERPRINT is last.
		setters = append(setters, stun.NewUsername(c.user), realm, nonce, key)
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return nil, nil, fmt.Errorf("build %s: %w", method, err)
	}
	return m, key, nil
}

// learn takes the realm and nonce of a 401 or 438 answer.
func (c *control) learn(resp *stun.Message) error {
	var realm stun.Realm
	var nonce stun.Nonce
	if err := realm.GetFrom(resp); err != nil {
		return fmt.Errorf("no REALM: %w", err)
	}
	if err := nonce.GetFrom(resp); err != nil {
		return fmt.Errorf("no NONCE: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.realm = append(stun.Realm(nil), realm...)
	c.nonce = append(stun.Nonce(nil), nonce...)
	c.key = stun.NewLongTermIntegrity(c.user, realm.String(), c.pass)
	return nil
}

// credentials returns what an authenticated request on another connection
// (ConnectionBind on a data connection) must carry.
func (c *control) credentials() (realm stun.Realm, nonce stun.Nonce, key stun.MessageIntegrity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.realm, c.nonce, c.key
}

// ping sends a Binding request and waits for any answer: a
// server that answers is alive.
func (c *control) ping(ctx context.Context) error {
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		return err
	}
	_, err = c.roundTrip(ctx, m)
	return err
}
