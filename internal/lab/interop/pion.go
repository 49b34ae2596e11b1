package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/logging"
)

// PionWriteSize is the largest frame the pion peer writes: pion/ice v2
// reads RFC 4571 frames into an 8,192-byte buffer (receiveMTU), so a peer
// that sends larger frames to pion loses the connection; pion's own
// writes stay below that too.
const PionWriteSize = 8000

// pionDriver runs a pion/ice v2 agent in this process: host TCP candidates
// on one address, passive through a TCPMux (the only way pion offers them),
// active by dialing the remote passive candidates.
type pionDriver struct {
	p      *Peer
	emit   func(event) // p.emit in process; JSON lines on stdout in a child
	agent  *ice.Agent
	mux    *ice.TCPMuxDefault
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  *sendQueue

	mu sync.Mutex
	// guarded by mu
	connecting bool
	conn       *ice.Conn

	connected chan struct{} // closed once conn is set
}

// PionConn waits until the pion peer is connected and returns its selected
// connection; with Options.DirectIO nobody else reads or writes it. It
// fails for other peers.
func (p *Peer) PionConn(ctx context.Context) (*ice.Conn, error) {
	d, ok := p.drv.(*pionDriver)
	if !ok {
		return nil, fmt.Errorf("interop: %s has no pion connection", p.kind)
	}
	select {
	case <-d.connected:
	case <-ctx.Done():
		return nil, fmt.Errorf("interop: pion: waiting for the connection: %w", ctx.Err())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn, nil
}

// NewPion starts a pion/ice v2 agent in this process. Stop it with Stop.
func NewPion(ctx context.Context, opts Options) (*Peer, error) {
	p := newPeer("pion", opts)
	d, err := startPion(p, p.emit, p.log)
	if err != nil {
		return nil, err
	}
	p.drv = d
	return p, nil
}

// StartPion is NewPion for a test; the peer stops at the test's end.
func StartPion(t testing.TB, opts Options) *Peer {
	t.Helper()
	p, err := NewPion(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	return p
}

func startPion(p *Peer, emit func(event), logTo io.Writer) (*pionDriver, error) {
	opts := p.opts
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netAddrPort(opts.addr(), 0)))
	if err != nil {
		return nil, fmt.Errorf("interop: pion: %w", err)
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = logTo
	lf.DefaultLogLevel = logging.LogLevelWarn
	if opts.Debug {
		lf.DefaultLogLevel = logging.LogLevelTrace
	}
	mux := ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: l, Logger: lf.NewLogger("pion-tcpmux"), ReadBufferSize: 32})
	want := opts.addr()
	cfg := &ice.AgentConfig{
		NetworkTypes:     []ice.NetworkType{networkType(want)},
		CandidateTypes:   []ice.CandidateType{ice.CandidateTypeHost},
		TCPMux:           mux,
		IncludeLoopback:  want.IsLoopback(),
		IPFilter:         func(ip net.IP) bool { a, ok := netipAddr(ip); return ok && a == want },
		MulticastDNSMode: ice.MulticastDNSModeDisabled,
		LoggerFactory:    lf,
	}
	if iv := opts.CheckInterval; iv > 0 {
		cfg.CheckInterval = &iv
		// pion ticks at the smallest of these four.
		disc, fail, keep := max(iv, 5*time.Second), max(iv, 25*time.Second), max(iv, 2*time.Second)
		cfg.DisconnectedTimeout, cfg.FailedTimeout, cfg.KeepaliveInterval = &disc, &fail, &keep
	}
	a, err := ice.NewAgent(cfg)
	if err != nil {
		mux.Close()
		return nil, fmt.Errorf("interop: pion: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &pionDriver{p: p, emit: emit, agent: a, mux: mux, ctx: ctx, cancel: cancel, queue: newSendQueue(), connected: make(chan struct{})}
	a.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			emit(event{Ev: "gathering-done"})
			return
		}
		emit(event{Ev: "candidate", Line: "candidate:" + c.Marshal()})
	})
	a.OnConnectionStateChange(func(s ice.ConnectionState) {
		emit(event{Ev: "state", State: pionState(s)})
	})
	a.OnSelectedCandidatePairChange(func(l, r ice.Candidate) {
		emit(event{Ev: "selected", Local: "candidate:" + l.Marshal(), Remote: r.Address() + fmt.Sprint(":", r.Port())})
	})
	ufrag, pwd, err := a.GetLocalUserCredentials()
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("interop: pion: %w", err)
	}
	emit(event{Ev: "credentials", Ufrag: ufrag, Pwd: pwd})
	if err := a.GatherCandidates(); err != nil {
		d.stop()
		return nil, fmt.Errorf("interop: pion: gather: %w", err)
	}
	if !opts.DirectIO {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.writer()
		}()
	}
	return d, nil
}

func pionState(s ice.ConnectionState) string {
	switch s {
	case ice.ConnectionStateConnected:
		return StateConnected
	case ice.ConnectionStateChecking:
		return StateChecking
	case ice.ConnectionStateFailed:
		return StateFailed
	}
	return strings.ToLower(s.String())
}

func (d *pionDriver) do(c command) error {
	switch c.Op {
	case "credentials":
		d.mu.Lock()
		start := !d.connecting
		d.connecting = true
		d.mu.Unlock()
		if start {
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.connect(c.Ufrag, c.Pwd)
			}()
		}
	case "candidate":
		cand, err := ice.UnmarshalCandidate(strings.TrimPrefix(c.Line, "candidate:"))
		if err != nil {
			d.emit(event{Ev: "error", Error: fmt.Sprintf("pion cannot parse %q: %v", c.Line, err)})
			return nil
		}
		if err := d.agent.AddRemoteCandidate(cand); err != nil {
			d.emit(event{Ev: "error", Error: fmt.Sprintf("pion AddRemoteCandidate %q: %v", c.Line, err)})
		}
	case "send":
		d.queue.push(c.Data, false)
	case "close":
		d.queue.push(nil, true)
	}
	return nil
}

// connect runs Dial (controlling) or Accept (controlled); both return once
// a pair is selected.
func (d *pionDriver) connect(ufrag, pwd string) {
	var conn *ice.Conn
	var err error
	if d.p.opts.Controlling {
		conn, err = d.agent.Dial(d.ctx, ufrag, pwd)
	} else {
		conn, err = d.agent.Accept(d.ctx, ufrag, pwd)
	}
	if err != nil {
		if d.ctx.Err() == nil {
			d.emit(event{Ev: "error", Error: "pion connect: " + err.Error()})
		}
		return
	}
	d.mu.Lock()
	d.conn = conn
	d.mu.Unlock()
	close(d.connected)
	if d.p.opts.DirectIO {
		return
	}
	d.queue.wake()
	buf := make([]byte, 1<<16)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			d.emit(event{Ev: "data", Data: append([]byte(nil), buf[:n]...)})
		}
		if err != nil {
			msg := err.Error()
			if errors.Is(err, io.EOF) {
				msg = ""
			}
			d.emit(event{Ev: "read-end", Error: msg})
			return
		}
	}
}

// writer sends queued data once connected, in frames pion itself can read.
func (d *pionDriver) writer() {
	sent := 0
	for {
		b, closeAfter, ok := d.queue.pop(d.ctx, func() bool {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.conn != nil
		})
		if !ok {
			return
		}
		d.mu.Lock()
		conn := d.conn
		d.mu.Unlock()
		for len(b) > 0 {
			k := min(len(b), PionWriteSize)
			if _, err := conn.Write(b[:k]); err != nil {
				d.emit(event{Ev: "error", Error: "pion write: " + err.Error()})
				return
			}
			b, sent = b[k:], sent+k
		}
		if closeAfter {
			d.emit(event{Ev: "sent", N: sent})
			conn.Close()
			return
		}
		if d.queue.empty() {
			d.emit(event{Ev: "sent", N: sent})
		}
	}
}

func (d *pionDriver) stop() error {
	d.cancel()
	d.queue.wake()
	err := d.agent.Close()
	d.wg.Wait()
	d.mux.Close()
	return err
}

// sendQueue holds bytes to send and a close marker, in order.
type sendQueue struct {
	ready chan struct{} // capacity 1

	mu sync.Mutex
	// guarded by mu
	items []queued
}

type queued struct {
	b          []byte
	closeAfter bool
}

func newSendQueue() *sendQueue { return &sendQueue{ready: make(chan struct{}, 1)} }

func (q *sendQueue) push(b []byte, closeAfter bool) {
	q.mu.Lock()
	q.items = append(q.items, queued{b, closeAfter})
	q.mu.Unlock()
	q.wake()
}

func (q *sendQueue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *sendQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) == 0
}

// pop waits until an item is queued and can() holds, or ctx ends.
func (q *sendQueue) pop(ctx context.Context, can func() bool) ([]byte, bool, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 && can() {
			it := q.items[0]
			q.items = q.items[1:]
			q.mu.Unlock()
			return it.b, it.closeAfter, true
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, false, false
		}
	}
}
