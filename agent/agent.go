package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"

	"github.com/icetcp/icetcp/internal/limits"
	"github.com/icetcp/icetcp/signaling"
)

// Agent is one ICE-TCP agent: it connects once, to one peer, and hands out
// the selected connection. Create it with New and call Connect.
type Agent struct {
	cfg    Config
	to     timeouts // the policy's durations (policy.go)
	tr     tracer   // Config.Tracer, nil-safe
	seams  seams
	log    logging.LeveledLogger
	creds  credentials
	events *eventQueue

	// ctx ends when the agent shuts down; every I/O goroutine it starts
	// derives from it, so shutdown interrupts them.
	ctx    context.Context
	cancel context.CancelFunc

	// successor is the agent an ICE restart handed the session to.
	successor atomic.Pointer[Agent]

	inbox     chan func(now time.Time) // run by the loop; the only way into loop state
	life      lifecycle
	wg        sync.WaitGroup // every goroutine the agent starts, the event queue's too
	remotePwd atomic.Pointer[string]
	nextID    atomic.Uint64
	inbound   *limits.Counter         // accepted connections awaiting their first check, in all and per source
	sess      atomic.Pointer[session] // the Conn's session, once selected in session mode

	// owned by run:
	state        State
	role         roleState
	g            gatherer  // our candidates and the sockets and queries behind them
	peer         peerState // what the peer told us
	cl           checklist
	conns        map[*pconn]struct{}
	sel          selection // nomination and the selected pair
	sig          signalState
	nat          natState
	punch        punchState
	pred         predictState
	consent      consentState
	mv           moveState // where the session goes (move.go)
	failErr      error
	lastActivity time.Time
	checkStart   time.Time
	lastCheck    time.Time
	count        counters
}

type connectResult struct {
	conn *Conn
	err  error
}

// maxRemoteCandidates bounds what a peer can make us store.
const maxRemoteCandidates = 256

// New makes an agent with fresh credentials. It opens no socket until
// Connect.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:     cfg,
		to:      newTimeouts(cfg),
		tr:      tracer{cfg.Tracer},
		seams:   seams{net: cfg.Network, allocate: cfg.allocate, natCheck: cfg.natCheck},
		log:     cfg.LoggerFactory.NewLogger("icetcp-agent"),
		inbox:   make(chan func(time.Time)), // unbuffered: a post is either run or refused, never lost with its resources
		life:    lifecycle{closing: make(chan struct{}), loopDone: make(chan struct{}), result: make(chan connectResult, 1)},
		conns:   map[*pconn]struct{}{},
		inbound: limits.NewCounter(maxPendingInbound, maxPendingPerSource),
	}
	if a.seams.net == nil {
		a.seams.net = &hostNetwork{}
	}
	a.pred.net = newCountingNetwork(a.seams.net) // port prediction counts our connections
	a.seams.net = a.pred.net
	a.events = &eventQueue{fn: cfg.OnEvent, wg: &a.wg, log: a.log}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	if a.creds.ufrag, err = randomICEString(cfg.Rand, 8); err != nil {
		return nil, err
	}
	if a.creds.pwd, err = randomICEString(cfg.Rand, 24); err != nil {
		return nil, err
	}
	var b [8]byte
	if _, err := io.ReadFull(cfg.Rand, b[:]); err != nil {
		return nil, fmt.Errorf("agent: tie-breaker: %w", err)
	}
	a.creds.tiebreaker = binary.BigEndian.Uint64(b[:])
	switch cfg.Role {
	case RoleControlling:
		a.role.controlling, a.role.known = true, true
	case RoleControlled:
		a.role.known = true
	}
	return a, nil
}

// Credentials returns the local ufrag and password.
func (a *Agent) Credentials() (ufrag, pwd string) { return a.creds.ufrag, a.creds.pwd }

// Gather starts gathering candidates (host, server-reflexive, relayed) and
// measuring the NAT before the peer is known, so that Connect can send
// them at once: an application that calls it while it reaches its
// rendezvous saves the STUN round trip from the connect time. It returns
// once the host candidates exist; the rest continues in the background.
// Calling it is optional (Connect gathers if it was not called), and a
// second call does nothing. ctx bounds the host candidates' part: a ctx
// that ends first fails Gather (and the agent) with its error.
func (a *Agent) Gather(ctx context.Context) error {
	select {
	case <-a.life.closing:
		return ErrClosed
	default:
	}
	a.life.gatherOnce.Do(func() { a.life.gatherErr = a.startGathering(ctx) })
	return a.life.gatherErr
}

func (a *Agent) startGathering(ctx context.Context) error {
	a.life.started.Store(true)
	now := time.Now()
	a.setState(StateGathering, now)
	// The host candidates' sockets open under ctx. A Close before this
	// point has cancelled the agent's context; one during it lets host
	// gathering (local, brief) end and the loop shut down. (Hooking the
	// agent's context to stop it cost every agent a children map and a
	// channel in that context, 0.4 KiB.)
	err := ctx.Err()
	if err == nil && a.ctx.Err() != nil {
		err = fmt.Errorf("agent: gather: %w", ErrClosed)
	}
	if err == nil {
		err = a.gather(ctx)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("agent: gather: %w", ctx.Err())
		}
		a.closeListeners()
		a.cancel()
		a.setState(StateFailed, now)
		close(a.life.loopDone)
		return err
	}
	for _, c := range a.g.locals {
		a.tr.candidate(TraceLocal, c, now)
	}
	// Register with the Mux before the loop exists: the loop's shutdown
	// unregisters, so a registration can never outlive the agent.
	if a.cfg.Mux != nil && !a.cfg.DisablePassive {
		a.cfg.Mux.register(a.creds.ufrag, a)
	}
	a.g.pending = a.startSrflx() + a.startRelays()
	a.startNATCheck()
	a.startAccepting()
	a.goTracked(a.run)
	return nil
}

// Connect exchanges candidates with the peer over ch (gathering them first
// if Gather was not called), runs the checks and returns the selected
// connection. It may be called once, and not after Close. Cancelling ctx
// before a pair is selected closes the agent; the error is then a
// *FailedError that matches ctx's error, and ErrNoPeer when nothing ever
// came from the peer (no credentials, no check): nobody to connect to, as
// opposed to checks that failed. The agent does not close
// ch; it stops using it when a pair is selected, when Connect returns an
// error, or when the agent closes.
func (a *Agent) Connect(ctx context.Context, ch signaling.Channel) (*Conn, error) {
	if ch == nil {
		return nil, errors.New("agent: Connect: nil signaling channel")
	}
	select {
	case <-a.life.closing:
		return nil, ErrClosed
	default:
	}
	if !a.life.connecting.CompareAndSwap(false, true) {
		return nil, ErrAlreadyStarted
	}
	if err := a.Gather(ctx); err != nil {
		return nil, err
	}
	if !a.post(func(now time.Time) { a.attach(ch, now) }) {
		select { // the agent ended before the peer was known
		case r := <-a.life.result:
			return r.conn, r.err
		default:
			return nil, ErrClosed
		}
	}
	select {
	case r := <-a.life.result:
		return r.conn, r.err
	case <-ctx.Done():
		err := a.ended(ctx.Err())
		a.Close()
		return nil, err
	}
}

// ended is Connect's error when its context ended before a pair was
// selected: ErrNoPeer when nothing ever came from the peer, else a
// *FailedError that says how the checks stood. Both wrap cause.
func (a *Agent) ended(cause error) error {
	reply := make(chan error, 1)
	if a.post(func(now time.Time) {
		if a.peer.ufrag == "" && a.checkStart.IsZero() {
			reply <- &FailedError{Reason: "no peer joined: nothing arrived from the peer", Err: fmt.Errorf("%w (%w)", ErrNoPeer, cause)}
			return
		}
		f := a.failure("no pair selected before Connect's context ended", cause)
		if len(f.Checks) > 0 {
			f.Reason += "; " + summarize(f.Checks)
		}
		reply <- f
	}) {
		return <-reply
	}
	select { // the agent ended on its own meanwhile
	case r := <-a.life.result:
		if r.err != nil {
			return r.err
		}
	default:
	}
	return fmt.Errorf("agent: connect: %w", cause)
}

// attach starts signaling over ch: our credentials, our NAT class (before
// the candidates, so the peer judges a simultaneous open when it forms the
// pair), every candidate gathered so far, end-of-candidates once gathering
// is over.
func (a *Agent) attach(ch signaling.Channel, now time.Time) {
	// Not a child of a.ctx: a child leaves a children map and a Done
	// channel in the agent's context for the rest of its life (0.4 KiB a
	// session, bench/scale); stopSignaling and shutdown cancel it.
	sigCtx, cancelSig := context.WithCancel(context.Background())
	a.sig.cancel = cancelSig
	a.sig.out = newOutbox(ch, a.log)
	a.sig.out.sent = func(m signaling.Message) {
		if m.Type == signaling.TypeCredentials {
			a.post(func(time.Time) { a.sig.credsOut = true })
		}
	}
	// The outbox outlives the receiving side: what it already queued
	// (our credentials) must reach a peer that was faster than them.
	out := a.sig.out
	a.goTracked(func() { out.run(a.ctx) })
	a.goTracked(func() { a.recvLoop(sigCtx, ch) })
	a.sig.out.send(signaling.Message{Type: signaling.TypeCredentials, Ufrag: a.creds.ufrag, Pwd: a.creds.pwd,
		Tiebreaker: a.creds.tiebreaker, Role: roleWord(a.cfg.Role), Features: a.localFeatures().list()})
	if a.nat.haveLocal {
		a.sig.out.send(signaling.Message{Type: signaling.TypeNAT, NAT: a.nat.local.String()})
	}
	for _, c := range a.g.locals {
		a.sig.out.send(signalingCandidate(c))
	}
	a.maybeEndOfCandidates(now)
}

func roleWord(r Role) string {
	if r == RoleAuto {
		return ""
	}
	return r.String()
}

// Close stops the agent: every socket it opened is closed (the selected
// connection too) and every goroutine it started, the one delivering
// events included, has returned when Close returns. It is safe to call more
// than once and from any goroutine except an OnEvent callback. An agent
// whose session an ICE restart took over (Config.Redial) closes the agent
// that carries it now too.
func (a *Agent) Close() error {
	a.life.closeOnce.Do(func() { close(a.life.closing) })
	if !a.life.started.Load() {
		a.cancel()
		return nil
	}
	<-a.life.loopDone
	a.wg.Wait()
	if b := a.successor.Load(); b != nil {
		return b.Close()
	}
	return nil
}

// Stats returns a snapshot of candidates and pairs.
func (a *Agent) Stats() Stats {
	reply := make(chan Stats, 1)
	if a.life.started.Load() && a.post(func(time.Time) { reply <- a.snapshot() }) {
		select {
		case s := <-reply:
			return s
		case <-a.life.loopDone:
		}
	}
	if s := a.life.final.Load(); s != nil {
		return *s
	}
	return Stats{State: StateNew, Role: a.cfg.Role}
}

// post runs f on the agent loop; false if the loop has ended.
func (a *Agent) post(f func(now time.Time)) bool {
	select {
	case a.inbox <- f:
		return true
	case <-a.life.loopDone:
		return false
	}
}

func (a *Agent) goTracked(f func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		f()
	}()
}

// run is the agent loop: it owns every field marked "owned by run". Each
// event is handled with the time it was taken from the channel, so the
// logic below never reads the clock itself.
func (a *Agent) run() {
	defer close(a.life.loopDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	now := time.Now()
	a.lastActivity = now
	for {
		next := a.tick(now)
		if a.state == StateFailed || a.state == StateClosed {
			a.shutdown(now)
			return
		}
		timer.Reset(next.Sub(now))
		select {
		case f := <-a.inbox:
			now = time.Now()
			f(now)
		case <-timer.C:
			now = time.Now()
		case <-a.life.closing:
			now = time.Now()
			a.fail(StateClosed, ErrClosed, now)
		}
	}
}

// setState records and announces a state change.
func (a *Agent) setState(s State, now time.Time) {
	a.state = s
	if a.mv.retired {
		return // its session lives on in a restarted agent, which tells
	}
	var err error
	if s == StateFailed {
		err = a.failErr
	}
	a.events.emit(Event{Type: EventState, Time: now, State: s, Err: err})
	a.tr.trace(TraceEvent{Kind: TraceState, Time: now, State: s, Err: err})
}

func (a *Agent) warn(err error, now time.Time) {
	a.log.Warnf("%v", err)
	a.events.emit(Event{Type: EventWarning, Time: now, Err: err})
	a.tr.trace(TraceEvent{Kind: TraceWarning, Time: now, Err: err})
}

// fail ends the agent with state s (Failed or Closed). Before selection it
// answers Connect; after selection the Conn reports err.
func (a *Agent) fail(s State, err error, now time.Time) {
	if a.state == StateFailed || a.state == StateClosed {
		return
	}
	a.failErr = err
	if a.sel.conn == nil && a.sig.out != nil {
		a.sig.out.send(signaling.Message{Type: signaling.TypeBye, Reason: byeReason(err)})
	}
	select {
	case a.life.result <- connectResult{err: err}:
	default:
	}
	a.setState(s, now)
}

// shutdown closes everything the agent opened; it runs on the loop as its
// last act.
func (a *Agent) shutdown(now time.Time) {
	a.cancel() // interrupts dials, punches and STUN queries in flight
	for _, p := range a.cl.pairs {
		if p.cancel != nil {
			p.cancel()
		}
	}
	if s := a.sess.Load(); s != nil && !a.mv.retired {
		s.fail(a.failErr) // Read and Write end with the agent's reason
	}
	for pc := range a.conns {
		pc.close(a.failErr)
	}
	a.stopSTUN()
	a.closeListeners()
	a.closeRelays()
	if a.cfg.Mux != nil {
		a.cfg.Mux.unregister(a.creds.ufrag, a)
	}
	s := a.snapshot()
	a.life.final.Store(&s)
	a.stopSignaling()
}

// role reports the current role for stats.
func (a *Agent) currentRole() Role {
	switch {
	case !a.role.known:
		return RoleAuto
	case a.role.controlling:
		return RoleControlling
	default:
		return RoleControlled
	}
}

// randomICEString draws n characters of the ICE alphabet (RFC 8445 §5.3).
func randomICEString(r io.Reader, n int) (string, error) {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("agent: credentials: %w", err)
	}
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)] // 256 is a multiple of 64: no bias
	}
	return string(b), nil
}

// newTxID draws a STUN transaction ID.
func (a *Agent) newTxID() [stun.TransactionIDSize]byte {
	var id [stun.TransactionIDSize]byte
	if _, err := io.ReadFull(a.cfg.Rand, id[:]); err != nil {
		// crypto/rand does not fail; a custom reader that does gets a
		// counter-based ID rather than a panic.
		binary.BigEndian.PutUint64(id[:], a.nextID.Add(1))
	}
	return id
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
