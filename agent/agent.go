package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/signaling"
)

// Agent is one ICE-TCP agent: it connects once, to one peer, and hands out
// the selected connection. Create it with New and call Connect.
type Agent struct {
	cfg        Config
	log        logging.LeveledLogger
	localUfrag string
	localPwd   string
	tiebreaker uint64
	events     *eventQueue

	inbox     chan func() // closures run by the loop; the only way into loop state
	closing   chan struct{}
	closeOnce sync.Once
	loopDone  chan struct{}
	started   atomic.Bool
	wg        sync.WaitGroup // every goroutine but the event queue's
	remotePwd atomic.Pointer[string]
	nextID    atomic.Uint64
	pending   atomic.Int64 // accepted connections not yet authenticated
	result    chan connectResult
	final     atomic.Pointer[Stats] // the last snapshot once the loop ended
	muxCand   candidate.Candidate   // set by gather before the agent registers with a Mux

	// owned by run:
	state          State
	controlling    bool
	roleKnown      bool
	locals         []candidate.Candidate
	listeners      []*listener
	remotes        []candidate.Candidate
	remoteUfrag    string
	remoteEOC      bool
	cl             checklist
	conns          map[*pconn]struct{}
	selected       *pair
	conn           *Conn
	nominating     *pair
	firstValid     time.Time
	lastActivity   time.Time
	checkStart     time.Time
	lastCheck      time.Time
	consentNext    time.Time
	consentLast    time.Time
	consentTx      map[[stun.TransactionIDSize]byte]time.Time
	consentOff     bool // a side half-closed: consent cannot be answered any more
	peerWriteEnded bool
	out            *outbox
	failErr        error
	gathering      int  // STUN queries still running
	eocSent        bool // our end-of-candidates is out
	lastEOC        time.Time
	stunConns      []net.Conn
	punchSent      bool
	punchSeq       uint32
	punchPing      time.Time
	punchAt        time.Time // when S-O checks start; zero until synchronised
	punchRTT       time.Duration
	punched        bool // the synchronised S-O checks have started

	stunDone chan struct{} // closed when kept-open STUN connections may go
	stunOnce sync.Once
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
		cfg:      cfg,
		log:      cfg.LoggerFactory.NewLogger("icetcp-agent"),
		events:   &eventQueue{fn: cfg.OnEvent},
		inbox:    make(chan func(), 64),
		closing:  make(chan struct{}),
		loopDone: make(chan struct{}),
		result:   make(chan connectResult, 1),
		conns:    map[*pconn]struct{}{},
		stunDone: make(chan struct{}),
	}
	if a.localUfrag, err = randomICEString(cfg.Rand, 8); err != nil {
		return nil, err
	}
	if a.localPwd, err = randomICEString(cfg.Rand, 24); err != nil {
		return nil, err
	}
	var b [8]byte
	if _, err := io.ReadFull(cfg.Rand, b[:]); err != nil {
		return nil, fmt.Errorf("agent: tie-breaker: %w", err)
	}
	a.tiebreaker = binary.BigEndian.Uint64(b[:])
	switch cfg.Role {
	case RoleControlling:
		a.controlling, a.roleKnown = true, true
	case RoleControlled:
		a.roleKnown = true
	}
	return a, nil
}

// Credentials returns the local ufrag and password.
func (a *Agent) Credentials() (ufrag, pwd string) { return a.localUfrag, a.localPwd }

// Connect gathers candidates, exchanges them with the peer over ch, runs
// the checks and returns the selected connection. It may be called once.
// Cancelling ctx before a pair is selected closes the agent. The agent does
// not close ch; it stops using it when Connect returns an error or the
// agent closes.
func (a *Agent) Connect(ctx context.Context, ch signaling.Channel) (*Conn, error) {
	if !a.started.CompareAndSwap(false, true) {
		return nil, ErrAlreadyStarted
	}
	if ch == nil {
		close(a.loopDone)
		return nil, errors.New("agent: Connect: nil signaling channel")
	}
	a.setState(StateGathering)
	if err := a.gather(); err != nil {
		a.closeListeners()
		close(a.loopDone)
		a.setState(StateFailed)
		return nil, err
	}
	sigCtx, cancelSig := context.WithCancel(context.Background())
	a.out = newOutbox(ch, a.log)
	a.goTracked(func() { a.out.run(sigCtx) })
	a.goTracked(func() { a.recvLoop(sigCtx, ch) })
	a.out.send(signaling.Message{Type: signaling.TypeCredentials, Ufrag: a.localUfrag, Pwd: a.localPwd,
		Tiebreaker: a.tiebreaker, Role: roleWord(a.cfg.Role)})
	for _, c := range a.locals {
		a.out.send(signaling.Message{Type: signaling.TypeCandidate, Candidate: c.Marshal()})
	}
	a.gathering = a.startSrflx()
	a.goTracked(func() { defer cancelSig(); a.run() })
	a.startAccepting()
	a.post(a.maybeEndOfCandidates)

	select {
	case r := <-a.result:
		return r.conn, r.err
	case <-ctx.Done():
		a.Close()
		return nil, fmt.Errorf("agent: connect: %w", ctx.Err())
	}
}

// byeReason fits err into the signaling schema's reason field.
func byeReason(err error) string {
	r := err.Error()
	if len(r) > 200 {
		r = r[:200]
	}
	return strings.ToValidUTF8(r, "?")
}

func roleWord(r Role) string {
	if r == RoleAuto {
		return ""
	}
	return r.String()
}

// Close stops the agent: every socket it opened is closed (the selected
// connection too) and every goroutine it started has returned when Close
// returns. It is safe to call more than once and from any goroutine except
// an OnEvent callback.
func (a *Agent) Close() error {
	a.closeOnce.Do(func() { close(a.closing) })
	if !a.started.Load() {
		return nil
	}
	<-a.loopDone
	a.wg.Wait()
	return nil
}

// Stats returns a snapshot of candidates and pairs.
func (a *Agent) Stats() Stats {
	reply := make(chan Stats, 1)
	if a.started.Load() && a.post(func() { reply <- a.snapshot() }) {
		select {
		case s := <-reply:
			return s
		case <-a.loopDone:
		}
	}
	if s := a.final.Load(); s != nil {
		return *s
	}
	return Stats{State: StateNew, Role: a.cfg.Role}
}

// post runs f on the agent loop; false if the loop has ended.
func (a *Agent) post(f func()) bool {
	select {
	case a.inbox <- f:
		return true
	case <-a.loopDone:
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

// run is the agent loop: it owns every field marked "owned by run".
func (a *Agent) run() {
	defer close(a.loopDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	a.lastActivity = time.Now()
	for {
		next := a.tick(time.Now())
		if a.state == StateFailed || a.state == StateClosed {
			a.shutdown()
			return
		}
		timer.Reset(time.Until(next))
		select {
		case f := <-a.inbox:
			f()
		case <-timer.C:
		case <-a.closing:
			a.fail(StateClosed, ErrClosed)
		}
	}
}

// setState records and announces a state change.
func (a *Agent) setState(s State) {
	a.state = s
	var err error
	if s == StateFailed {
		err = a.failErr
	}
	a.events.emit(Event{Type: EventState, Time: time.Now(), State: s, Err: err})
}

func (a *Agent) warn(err error) {
	a.log.Warnf("%v", err)
	a.events.emit(Event{Type: EventWarning, Time: time.Now(), Err: err})
}

// fail ends the agent with state s (Failed or Closed). Before selection it
// answers Connect; after selection the Conn reports err.
func (a *Agent) fail(s State, err error) {
	if a.state == StateFailed || a.state == StateClosed {
		return
	}
	a.failErr = err
	if a.conn == nil && a.out != nil {
		a.out.send(signaling.Message{Type: signaling.TypeBye, Reason: byeReason(err)})
	}
	select {
	case a.result <- connectResult{err: err}:
	default:
	}
	a.setState(s)
}

// shutdown closes everything the agent opened; it runs on the loop as its
// last act.
func (a *Agent) shutdown() {
	for _, p := range a.cl.pairs {
		if p.cancel != nil {
			p.cancel()
		}
	}
	for pc := range a.conns {
		pc.close(a.failErr)
	}
	a.stopSTUN()
	a.closeListeners()
	if a.cfg.Mux != nil {
		a.cfg.Mux.unregister(a.localUfrag, a)
	}
	s := a.snapshot()
	a.final.Store(&s)
	if a.out != nil {
		a.out.close()
	}
}

// role reports the current role for stats.
func (a *Agent) role() Role {
	switch {
	case !a.roleKnown:
		return RoleAuto
	case a.controlling:
		return RoleControlling
	default:
		return RoleControlled
	}
}

// recvLoop feeds signaling messages to the loop.
func (a *Agent) recvLoop(ctx context.Context, ch signaling.Channel) {
	for {
		m, err := ch.Recv(ctx)
		if err != nil {
			if ctx.Err() == nil {
				a.post(func() { a.onSignalError(err) })
			}
			return
		}
		if !a.post(func() { a.onSignal(m) }) {
			return
		}
	}
}

func (a *Agent) onSignalError(err error) {
	if a.selected != nil {
		return // the signaling channel is not needed any more
	}
	if a.remoteUfrag == "" {
		a.fail(StateFailed, &FailedError{Reason: "signaling ended before the peer's credentials arrived: " + err.Error(), Err: err})
		return
	}
	a.warn(fmt.Errorf("agent: signaling: %w (checks go on)", err))
}

func (a *Agent) onSignal(m signaling.Message) {
	switch m.Type {
	case signaling.TypeCredentials:
		a.onCredentials(m)
	case signaling.TypeCandidate:
		c, err := candidate.Parse(m.Candidate)
		if err != nil {
			if !errors.Is(err, candidate.ErrUnsupportedTransport) {
				a.warn(fmt.Errorf("agent: remote candidate %q: %w", m.Candidate, err))
			}
			return
		}
		a.addRemote(c)
	case signaling.TypeEndOfCandidates:
		if !a.remoteEOC {
			a.remoteEOC, a.lastEOC = true, time.Now()
			a.maybeStartPunchSync(a.lastEOC)
		}
	case signaling.TypeBye, signaling.TypePeerLeft:
		a.onPeerGone(m)
	case signaling.TypePunch:
		a.onPunch(m.Punch, time.Now())
	}
}

// onPeerGone handles the peer's bye (it gave up or closed) and the
// rendezvous' peer-left. A peer that selected a pair first may leave
// signaling while our side still finishes its checks over TCP, so peer-left
// is fatal only when no connection to the peer is alive.
func (a *Agent) onPeerGone(m signaling.Message) {
	if a.selected != nil {
		return
	}
	a.remoteEOC = true // nothing more will come
	if m.Type == signaling.TypePeerLeft && a.peerConnected() {
		a.log.Debugf("peer left signaling; finishing over the connections we have")
		return
	}
	reason := "peer left before a pair was selected"
	if m.Type == signaling.TypeBye {
		reason = "peer gave up"
	}
	if m.Reason != "" {
		reason += ": " + m.Reason
	}
	a.fail(StateFailed, &FailedError{Reason: reason, Err: ErrPeerLeft, Checks: a.cl.failures()})
}

// peerConnected reports an authenticated connection to the peer.
func (a *Agent) peerConnected() bool {
	for pc := range a.conns {
		if pc.authenticated.Load() && !pc.closed() {
			return true
		}
	}
	return false
}

func (a *Agent) onCredentials(m signaling.Message) {
	if a.remoteUfrag != "" {
		if m.Ufrag != a.remoteUfrag {
			a.warn(fmt.Errorf("agent: peer sent new credentials (ICE restart is not supported); ignored"))
		}
		return
	}
	a.remoteUfrag = m.Ufrag
	pwd := m.Pwd
	a.remotePwd.Store(&pwd)
	if !a.roleKnown {
		switch m.Role {
		case "controlling":
			a.controlling = false
		case "controlled":
			a.controlling = true
		default:
			a.controlling = a.tiebreaker > m.Tiebreaker
		}
		a.roleKnown = true
		a.cl.reprioritize(a.controlling)
	}
	a.lastActivity = time.Now()
	a.checkStart = a.lastActivity
	a.setState(StateChecking)
	a.startPunchPing(a.checkStart)
	a.maybeStartPunchSync(a.checkStart)
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
