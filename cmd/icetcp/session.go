package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/secure"
	"github.com/icetcp/icetcp/signaling"
)

// peerKey is how the two peers of send and receive find and authenticate
// each other: a short code (a PAKE) or a 28-symbol secret.
type peerKey struct {
	code       secure.Code
	side       secure.CodeSide
	secret     secure.Secret
	withSecret bool
}

func (k peerKey) room() (string, ed25519.PrivateKey) {
	if k.withSecret {
		return secure.RoomName(k.secret), secure.RoomKey(k.secret)
	}
	return k.code.RoomName(), k.code.RoomKey()
}

// session is one connection of send or receive to its peer.
type session struct {
	agent *agent.Agent
	conn  *agent.Conn
	sc    *secure.Conn
}

func (s *session) close() {
	if s.sc != nil {
		s.sc.Close()
	}
	if s.agent != nil {
		s.agent.Close()
	}
}

// abort ends the session without its end of stream: the peer reads
// "interrupted by the peer".
func (s *session) abort() {
	if s.conn != nil {
		s.conn.Abort()
	}
	s.close()
}

// checkSignal validates --signal before anything starts.
func checkSignal(s string) error {
	if s == "" {
		return usageErr("--signal is required (the rendezvous both sides use, ws://HOST:PORT; also $ICETCP_SIGNAL)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return usageErr("--signal: %v", err)
	}
	if (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return usageErr("--signal %q: want ws://HOST:PORT or wss://HOST:PORT", s)
	}
	return nil
}

// connectPeer joins the room of key, waits for the peer, runs the code
// exchange (or the secret's confirmation), connects with ICE and secures
// the stream. joined is told how many members the room has with us (1:
// we wait for the peer); its error ends the attempt.
func connectPeer(ctx context.Context, f *connectFlags, key peerKey, ev *eventWriter, joined func(members int) error) (*session, error) {
	cfg, err := f.agentConfig()
	if err != nil {
		return nil, err
	}
	dialer, err := f.dialer()
	if err != nil {
		return nil, err
	}
	for i := range cfg.TURNServers {
		cfg.TURNServers[i].TLSConfig = dialer.TLSConfig.Clone()
	}
	cfg.Proxy, dialer.Proxy = f.proxy, f.proxy
	f.apply(&cfg)
	refusedCtx, refuse := context.WithCancelCause(ctx)
	defer refuse(nil)
	ev.onRefusal = refuse
	cfg.Tracer = ev
	cfg.LoggerFactory = quietLogger(ev.w, f.jsonOut)
	room, roomKey := key.room()
	dialer.RoomKey = roomKey
	// No Redial (ICE restart) here: a transfer resumes from the partial
	// file instead, and a sender whose receiver was killed must leave the
	// room to the receiver that comes back with the code.
	var sk secure.Secret

	selectCtx, cancel := context.WithTimeout(refusedCtx, f.timeout)
	defer cancel()
	a, err := agent.New(cfg)
	if err != nil {
		return nil, err
	}
	s := &session{agent: a}
	fail := func(err error) (*session, error) {
		s.close()
		return nil, proxyRefusal(refusedCtx, interrupted(ctx, noPeerHint(selectCtx, f.timeout, err)))
	}
	if err := a.Gather(selectCtx); err != nil {
		return fail(err)
	}
	ch, err := dialer.Dial(selectCtx, f.signal, room)
	if err != nil {
		return fail(roomHint(dialHint(err)))
	}
	defer ch.Close()
	if joined != nil {
		if err := joined(ch.Members()); err != nil {
			return fail(err)
		}
	}
	if key.withSecret {
		sk = key.secret
		ch, err = confirmedPeer(selectCtx, dialer, f.signal, room, ch, sk, ev)
		if err == nil {
			defer ch.Close()
		}
	} else {
		sk, err = secure.ExchangeCode(selectCtx, ch, key.code, key.side)
		if errors.Is(err, secure.ErrUnconfirmed) {
			err = fmt.Errorf("%w\n  the other side does not hold this code (a typo, or someone guessing it); the sender has to make a new code", err)
		}
	}
	if err != nil {
		return fail(err)
	}
	conn, err := a.Connect(selectCtx, ch)
	if err != nil {
		return fail(err)
	}
	s.conn = conn
	ev.selected(conn)
	cancel()
	ch.Close() // signaling is done: free the room for the rendezvous
	sc, took, err := secureConn(ctx, conn, sk)
	if err != nil {
		s.abort()
		return nil, interrupted(ctx, err)
	}
	ev.secured(sc, took)
	s.sc = sc
	return s, nil
}

// noPeerHint words a wait that ran out: nobody came, or nobody finished
// the exchange, within the timeout.
func noPeerHint(ctx context.Context, timeout time.Duration, err error) error {
	if errors.Is(err, agent.ErrNoPeer) || (ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) && !isFailed(err)) {
		return fmt.Errorf("the peer did not join within %v (--timeout): %w", timeout, err)
	}
	return err
}

func isFailed(err error) bool {
	var fe *agent.FailedError
	return errors.As(err, &fe) && !errors.Is(err, agent.ErrNoPeer)
}

// roomHint says what a busy room means.
func roomHint(err error) error {
	if errors.Is(err, signaling.ErrRoomFull) {
		return fmt.Errorf("room busy: two peers are in it already (another transfer with this code or secret, or an earlier run still connected): %w", err)
	}
	return err
}
