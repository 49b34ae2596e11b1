package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/framing"
	"github.com/icetcp/icetcp/internal/limits"
)

// MuxConfig configures a Mux. The zero value works.
type MuxConfig struct {
	// MaxPending bounds accepted connections that have not yet sent their
	// first Binding request; more are closed at once. Zero means 1024.
	MaxPending int
	// MaxPendingPerSource bounds them per source address (per /64 for
	// IPv6), so that one source cannot take every slot. Zero means 64
	// (a carrier-grade NAT puts many honest clients behind one address).
	MaxPendingPerSource int
	// FirstMessageTimeout bounds the wait for that first request. Zero
	// means 5s.
	FirstMessageTimeout time.Duration
	// LoggerFactory: nil means logging.NewDefaultLoggerFactory(); scope
	// "icetcp-mux".
	LoggerFactory logging.LoggerFactory
}

// MuxStats counts what a Mux did.
type MuxStats struct {
	Accepted uint64 // connections accepted
	Routed   uint64 // handed to an agent
	// Refused by reason: over the pending limit (in total or for its
	// source), no valid first Binding request in time, or an unknown
	// USERNAME.
	RefusedPending, RefusedSource, RefusedFirstMessage, RefusedUnknown uint64
	Agents                                                             int // registered now
	Pending                                                            int // awaiting their first message now
}

// Mux is one passive TCP listener shared by many agents, the way a media
// server serves thousands of sessions on one public port. Each accepted
// connection is routed to its agent by the USERNAME of its first Binding
// request (the agent's ufrag comes first, RFC 8445 §7.2.2); the agent then
// authenticates it as usual.
type Mux struct {
	l       net.Listener
	addr    netip.AddrPort
	cand    candidate.Candidate // the passive candidate of addr, every agent's through the Mux
	cfg     MuxConfig
	log     logging.LeveledLogger
	pending *limits.Counter
	wg      sync.WaitGroup
	refusal *limits.RefusalLog

	accepted, routed                            atomic.Uint64
	refPending, refSource, refFirst, refUnknown atomic.Uint64

	// nat is the NAT measurement every agent of the Mux shares (NAT).
	nat NATCache

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
	if cfg.MaxPending < 0 || cfg.MaxPendingPerSource < 0 || cfg.FirstMessageTimeout < 0 {
		return nil, errors.New("agent: mux: negative MaxPending, MaxPendingPerSource or FirstMessageTimeout")
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 1024
	}
	if cfg.MaxPendingPerSource == 0 {
		cfg.MaxPendingPerSource = 64
	}
	if cfg.FirstMessageTimeout == 0 {
		cfg.FirstMessageTimeout = 5 * time.Second
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	m := &Mux{
		l: l, addr: addr, cfg: cfg, log: cfg.LoggerFactory.NewLogger("icetcp-mux"),
		cand:    candidate.New(candidate.Host, candidate.Passive, addr, netip.AddrPort{}, netip.Addr{}, 8191),
		pending: limits.NewCounter(cfg.MaxPending, cfg.MaxPendingPerSource),
		agents:  map[string]*Agent{}, conns: map[net.Conn]struct{}{},
	}
	m.refusal = limits.NewRefusalLog(m.log.Warnf, 0)
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

// NAT is the NAT measurement the Mux's agents share unless their Config
// names another: a server measures its NAT once, not once per session.
func (m *Mux) NAT() *NATCache { return &m.nat }

// Addr is the shared passive candidate's address.
func (m *Mux) Addr() netip.AddrPort { return m.addr }

// Stats returns the Mux's counters.
func (m *Mux) Stats() MuxStats {
	m.mu.Lock()
	agents, pending := len(m.agents), len(m.conns)
	m.mu.Unlock()
	return MuxStats{
		Accepted: m.accepted.Load(), Routed: m.routed.Load(),
		RefusedPending: m.refPending.Load(), RefusedSource: m.refSource.Load(),
		RefusedFirstMessage: m.refFirst.Load(), RefusedUnknown: m.refUnknown.Load(),
		Agents: agents, Pending: pending,
	}
}

// Close stops accepting and closes connections not yet handed to an agent;
// it returns when every goroutine of the Mux has. Agents keep the
// connections they already own.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	conns := make([]net.Conn, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	for _, c := range conns { // never close sockets under the lock
		c.Close()
	}
	err := m.l.Close()
	m.wg.Wait()
	m.refusal.Close() // its timers
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
		m.accepted.Add(1)
		src := addrPortOf(c.RemoteAddr()).Addr()
		if err := m.pending.Take(src); err != nil {
			m.refuse(c, src, err)
			continue
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			c.Close()
			m.pending.Give(src)
			return
		}
		m.conns[c] = struct{}{}
		m.mu.Unlock()
		m.wg.Add(1)
		go m.route(c, src)
	}
}

// refuse closes a connection over the pending limits and says why.
func (m *Mux) refuse(c net.Conn, src netip.Addr, why error) {
	c.Close()
	if errors.Is(why, limits.ErrTotal) {
		m.refPending.Add(1)
		m.refusal.Note("pending", fmt.Sprintf("%d connections await their first check", m.cfg.MaxPending))
		return
	}
	m.refSource.Add(1)
	m.refusal.Note("source", fmt.Sprintf("%s holds %d connections that sent nothing yet", src, m.cfg.MaxPendingPerSource))
}

// route reads the first frame, finds the agent by USERNAME and hands the
// connection over; anything else closes it.
func (m *Mux) route(c net.Conn, src netip.Addr) {
	defer m.wg.Done()
	handed := false
	defer func() {
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
		m.pending.Give(src)
		if !handed {
			c.Close()
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(m.cfg.FirstMessageTimeout))
	fr := framing.NewReader(c)
	frame, err := fr.Next()
	if err != nil {
		m.refFirst.Add(1)
		m.refusal.Note("first-message", fmt.Sprintf("%s: no first message: %v", c.RemoteAddr(), err))
		return
	}
	ufrag, err := firstUfrag(frame)
	if err != nil {
		m.refFirst.Add(1)
		m.refusal.Note("first-message", fmt.Sprintf("%s: %v", c.RemoteAddr(), err))
		return
	}
	m.mu.Lock()
	a := m.agents[ufrag]
	m.mu.Unlock()
	if a == nil {
		m.refUnknown.Add(1)
		m.refusal.Note("unknown", fmt.Sprintf("%s: no agent with ufrag %q", c.RemoteAddr(), ufrag))
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	first := append([]byte(nil), frame...)
	if handed = a.handoff(c, fr, first, m.cand); handed {
		m.routed.Add(1)
	}
}

// firstUfrag reads the recipient's ufrag from a first frame that must be a
// STUN Binding request.
func firstUfrag(frame []byte) (string, error) {
	if !framing.IsSTUN(frame) {
		return "", errors.New("agent: mux: first message is not STUN")
	}
	msg, err := decodeSTUN(frame)
	if err != nil {
		return "", fmt.Errorf("agent: mux: first message: %w", err)
	}
	if msg.Type.Class != stun.ClassRequest {
		return "", fmt.Errorf("agent: mux: first message is a %v, not a Binding request", msg.Type)
	}
	ufrag, _, err := requestUfrags(msg)
	return ufrag, err
}
