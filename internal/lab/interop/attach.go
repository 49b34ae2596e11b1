package interop

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// Channel returns an in-memory signaling.Channel to hand to an icetcp
// agent.Agent: the peer's credentials (with its role), candidates and
// end-of-candidates come out of it, and what the agent sends goes to the
// peer. The channel is closed when the peer stops.
func (p *Peer) Channel() signaling.Channel {
	agentEnd, peerEnd := signalingtest.NewPair()
	p.Attach(peerEnd)
	return agentEnd
}

// JoinRoom joins room on the rendezvous at url (ws://...) as this peer, so
// that a real `icetcp connect --room room` meets it. d may be nil; a
// Dialer with its own HTTPClient reaches a rendezvous in a lab namespace.
func (p *Peer) JoinRoom(ctx context.Context, d *wsclient.Dialer, url, room string) error {
	if d == nil {
		d = &wsclient.Dialer{}
	}
	c, err := d.Dial(ctx, url, room)
	if err != nil {
		return fmt.Errorf("interop: %s: join room: %w", p.kind, err)
	}
	p.Attach(c)
	return nil
}

// JoinRoomT is JoinRoom that fails t on error.
func (p *Peer) JoinRoomT(t testing.TB, url, room string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.JoinRoom(ctx, nil, url, room); err != nil {
		t.Fatal(err)
	}
}

// Attach carries the peer's signaling over ch until the peer stops; ch is
// closed then. Messages the peer cannot use (punch timing) are dropped.
func (p *Peer) Attach(ch signaling.Channel) {
	ctx, cancel := context.WithCancel(context.Background())
	p.attachWG.Add(3)
	go func() {
		defer p.attachWG.Done()
		select {
		case <-p.attachStop:
		case <-ctx.Done():
		}
		cancel()
		ch.Close()
	}()
	go func() {
		defer p.attachWG.Done()
		if err := p.sendLocal(ctx, ch); err != nil && ctx.Err() == nil {
			p.log.printf("%s signaling send: %v", p.kind, err)
		}
	}()
	go func() {
		defer p.attachWG.Done()
		p.recvRemote(ctx, ch)
	}()
}

// sendLocal sends the peer's credentials, then its candidates as they
// come, then end-of-candidates.
func (p *Peer) sendLocal(ctx context.Context, ch signaling.Channel) error {
	var tb [8]byte
	if _, err := rand.Read(tb[:]); err != nil {
		return err
	}
	if err := p.wait(ctx, "credentials", func() bool { return p.ufrag != "" }); err != nil {
		return err
	}
	p.mu.Lock()
	creds := signaling.Message{Type: signaling.TypeCredentials, Ufrag: p.ufrag, Pwd: p.pwd,
		Tiebreaker: binary.BigEndian.Uint64(tb[:]) | 1, Role: p.opts.role()}
	p.mu.Unlock()
	if err := ch.Send(ctx, creds); err != nil {
		return err
	}
	sent := 0
	for {
		var next []string
		var done bool
		if err := p.wait(ctx, "candidates", func() bool { return len(p.cands) > sent || p.gathered }); err != nil {
			return err
		}
		p.mu.Lock()
		next, done = p.cands[sent:], p.gathered && len(p.cands) == sent
		p.mu.Unlock()
		for _, c := range next {
			if err := ch.Send(ctx, signaling.Message{Type: signaling.TypeCandidate, Candidate: c}); err != nil {
				return err
			}
			sent++
		}
		if done {
			return ch.Send(ctx, signaling.Message{Type: signaling.TypeEndOfCandidates})
		}
	}
}

// recvRemote passes what the icetcp side sends to the agent.
func (p *Peer) recvRemote(ctx context.Context, ch signaling.Channel) {
	for {
		m, err := ch.Recv(ctx)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, signaling.ErrClosed) && !errors.Is(err, signaling.ErrPeerLeft) {
				p.log.printf("%s signaling recv: %v", p.kind, err)
			}
			return
		}
		var c command
		switch m.Type {
		case signaling.TypeCredentials:
			c = command{Op: "credentials", Ufrag: m.Ufrag, Pwd: m.Pwd}
		case signaling.TypeCandidate:
			c = command{Op: "candidate", Line: m.Candidate}
		case signaling.TypeEndOfCandidates:
			c = command{Op: "end-of-candidates"}
		default:
			p.log.printf("%s signaling: %s %s (ignored)", p.kind, m.Type, strings.TrimSpace(m.Reason))
			continue
		}
		if err := p.drv.do(c); err != nil {
			p.log.printf("%s: %s: %v", p.kind, c.Op, err)
		}
	}
}

// Pair wires two peers' signaling to each other (libnice with libnice,
// pion with pion) through an in-memory channel pair.
func Pair(a, b *Peer) {
	x, y := signalingtest.NewPair()
	a.Attach(x)
	b.Attach(y)
}
