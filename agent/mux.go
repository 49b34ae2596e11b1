package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"

	"github.com/icetcp/icetcp/internal/framing"
)

// MuxConfig configures a Mux. The zero value works.
type MuxConfig struct {
	// MaxPending bounds accepted connections that have not yet sent their
	// first Binding request; more are closed at once. Zero means 1024.
	MaxPending int
	// FirstMessageTimeout bounds the wait for that first request. Zero
	// means 10s.
	FirstMessageTimeout time.Duration
	// LoggerFactory: nil means logging.NewDefaultLoggerFactory(); scope
	// "icetcp-mux".
	LoggerFactory logging.LoggerFactory
}

// Mux is one passive TCP listener shared by many agents, the way a media
// server serves thousands of sessions on one public port. Each accepted
// connection is routed to its agent by the USERNAME of its first Binding
// request (the agent's ufrag comes first, RFC 8445 §7.2.2); the agent then
// authenticates it as usual.
type Mux struct {
	l    net.Listener
	addr netip.AddrPort
	cfg  MuxConfig
	log  logging.LeveledLogger
	sem  chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex // guards following
	agents map[string]*Agent
	conns  map[net.Conn]struct{} // connections not yet handed off
	closed bool
}

// NewMux serves l until Close. l must be a TCP listener.
func NewMux(l net.Listener, cfg MuxConfig) (*Mux, error) {
	addr := addrPortOf(l.Addr())
	if !addr.IsValid() || addr.Addr().IsUnspecified() {
		return nil, fmt.Errorf("agent: mux: listener address %v must be a concrete TCP address (it becomes the passive candidate)", l.Addr())
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 1024
	}
	if cfg.FirstMessageTimeout == 0 {
		cfg.FirstMessageTimeout = 10 * time.Second
	}
	if cfg.MaxPending < 0 || cfg.FirstMessageTimeout < 0 {
		return nil, errors.New("agent: mux: negative MaxPending or FirstMessageTimeout")
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	m := &Mux{
		l: l, addr: addr, cfg: cfg, log: cfg.LoggerFactory.NewLogger("icetcp-mux"),
		sem: make(chan struct{}, cfg.MaxPending), agents: map[string]*Agent{}, conns: map[net.Conn]struct{}{},
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

// Addr is the shared passive candidate's address.
func (m *Mux) Addr() netip.AddrPort { return m.addr }

// Close stops accepting and closes connections not yet handed to an agent.
// Agents keep the connections they already own.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for c := range m.conns {
		c.Close()
	}
	m.mu.Unlock()
	err := m.l.Close()
	m.wg.Wait()
	return err
}

func (m *Mux) register(ufrag string, a *Agent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.agents[ufrag] = a
}

func (m *Mux) unregister(ufrag string, a *Agent) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.agents[ufrag] == a {
		delete(m.agents, ufrag)
	}
}

func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.log.Warnf("accept: %v", err)
			}
			return
		}
		select {
		case m.sem <- struct{}{}:
		default:
			m.log.Warnf("%d connections await their first check; closing %s", m.cfg.MaxPending, c.RemoteAddr())
			c.Close()
			continue
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.Close()
			<-m.sem
			return
		}
		m.conns[c] = struct{}{}
		m.mu.Unlock()
		m.wg.Add(1)
		go m.route(c)
	}
}

// route reads the first frame, finds the agent by USERNAME and hands the
// connection over; anything else closes it.
func (m *Mux) route(c net.Conn) {
	defer m.wg.Done()
	handed := false
	defer func() {
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
		<-m.sem
		if !handed {
			c.Close()
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(m.cfg.FirstMessageTimeout))
	fr := framing.NewReader(c)
	frame, err := fr.Next()
	if err != nil {
		m.log.Debugf("%s: no first message: %v", c.RemoteAddr(), err)
		return
	}
	if !framing.IsSTUN(frame) {
		m.log.Debugf("%s: first message is not STUN", c.RemoteAddr())
		return
	}
	msg, err := decodeSTUN(frame)
	if err != nil || msg.Type.Class != stun.ClassRequest {
		m.log.Debugf("%s: first message is not a Binding request: %v", c.RemoteAddr(), err)
		return
	}
	ufrag, _, err := requestUfrags(msg)
	if err != nil {
		m.log.Debugf("%s: %v", c.RemoteAddr(), err)
		return
	}
	m.mu.Lock()
	a := m.agents[ufrag]
	m.mu.Unlock()
	if a == nil {
		m.log.Debugf("%s: no agent with ufrag %q", c.RemoteAddr(), ufrag)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	first := append([]byte(nil), frame...)
	local := a.muxCand
	handed = a.handoff(c, fr, first, local)
}
