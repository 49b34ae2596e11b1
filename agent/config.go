package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/proxy"
	"github.com/icetcp/icetcp/internal/turn"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/tcpso"
)

// Role is the ICE role an agent starts with (RFC 8445 §6.1.1).
type Role int

const (
	// RoleAuto decides the role from the tie-breakers exchanged with the
	// credentials: the larger one controls. Both sides must use it (or one
	// side an explicit role) for the decision to be consistent; a clash is
	// repaired by the 487 role-conflict procedure anyway.
	RoleAuto Role = iota
	// RoleControlling starts as the controlling agent.
	RoleControlling
	// RoleControlled starts as the controlled agent.
	RoleControlled
)

func (r Role) String() string {
	switch r {
	case RoleControlling:
		return "controlling"
	case RoleControlled:
		return "controlled"
	default:
		return "auto"
	}
}

// Config configures an Agent. The zero value works: every usable non-loopback
// interface address, all three TCP candidate types, RoleAuto and the timers
// below.
type Config struct {
	// Role is the starting role; zero is RoleAuto.
	Role Role

	// Addrs restricts host candidates to these local addresses (for example
	// 127.0.0.1 in tests). nil means every address of every interface that
	// is up, without loopback and link-local addresses.
	Addrs []netip.Addr
	// IncludeLoopback adds loopback addresses when Addrs is nil.
	IncludeLoopback bool

	// DisableActive, DisablePassive and DisableSO leave a TCP candidate
	// type out of gathering (zero: all three are offered).
	DisableActive, DisablePassive, DisableSO bool

	// Mux is a shared passive listener (one port for many agents). nil: the
	// agent opens its own passive listener per address. With a Mux the
	// agent's only passive candidate is the Mux's address.
	Mux *Mux

	// STUNServers are STUN servers reached over TCP (HOST:PORT) for
	// server-reflexive candidates (RFC 6544 §5.2). nil: none. New
	// refuses an entry that is not HOST:PORT.
	STUNServers []string
	// TURNServers give relayed candidates (RFC 6062 TCP allocations),
	// allocated in parallel with host and server-reflexive gathering.
	// nil: none. New refuses a URI that does not parse (a server that
	// cannot be reached or refuses us is a warning, found while
	// gathering).
	TURNServers []TURNServer
	// Proxy is how the TURN servers are reached, the control connection
	// and every RFC 6062 data connection alike:
	// "http://[USER:PASS@]HOST[:PORT]" asks an HTTP proxy for a tunnel with
	// CONNECT (Basic credentials), "socks5://[USER:PASS@]HOST[:PORT]" a
	// SOCKS5 proxy, "direct" uses none. Empty: from the environment, as
	// Go's HTTP client reads it for https: HTTPS_PROXY (or https_proxy),
	// else ALL_PROXY (or all_proxy), with NO_PROXY (or no_proxy) naming
	// servers reached directly; loopback servers never go through a proxy
	// found there. The server's name is resolved by the proxy, and
	// turns: stays TLS to the server inside the tunnel (proxies that allow
	// CONNECT only to 443 want turns: on 443). Relayed candidates are the
	// same as without a proxy; host and server-reflexive candidates are
	// still gathered and tried (STUN does not go through the proxy: the
	// proxy's reflexive address would be of no use to the peer). A
	// proxy's refusal arrives as an EventWarning whose error is a
	// *ProxyError; Stats.Relays and EventRelay say which proxy an
	// allocation went through.
	Proxy string
	// AwaitDirect nominates a relayed pair only once every direct pair has
	// failed, as agents without NAT classes do: the slow fallback, kept to
	// measure what the fast one saves. Zero: the relayed pair is nominated
	// as soon as no direct pair can still win.
	AwaitDirect bool
	// DisableNATCheck skips measuring this host's NAT against the first
	// STUN server (internal/natcheck), whose class the peer uses to skip
	// hopeless simultaneous opens. Zero: measured whenever STUNServers is
	// set; it runs beside gathering and costs a few connections.
	DisableNATCheck bool
	// NAT, when set, is a NAT measurement shared with other agents of this
	// host: the class is measured once (per STUN server and local address)
	// and refreshed as NATCache says, instead of by every agent. nil: the
	// agent measures on its own, or shares its Mux's (Mux.NAT).
	NAT *NATCache

	// Pacing is Ta, the interval between starting two checks (RFC 8445
	// §14.2). Zero means 50ms.
	Pacing time.Duration
	// CheckTimeout bounds one check: connecting (or punching) plus the
	// STUN transaction. Zero means 10s.
	CheckTimeout time.Duration
	// FirstMessageTimeout bounds how long an accepted connection may stay
	// silent before its first STUN message. Zero means 10s.
	FirstMessageTimeout time.Duration
	// Punch is the retry schedule for simultaneous open (tcp-so pairs);
	// zero fields take tcpso's defaults.
	Punch tcpso.Schedule
	// PrimeTTL, when non-zero, sends the first SYN of each punch attempt
	// with this IP TTL: it opens our own NAT's mapping without reaching the
	// far NAT, which would answer RST (Linux only). Zero: off.
	PrimeTTL int
	// NominationWait is how long the controlling agent waits, after a pair
	// succeeds, for a higher-priority pair still in progress before it
	// nominates the best valid pair (also waiting, when set, for the peer's
	// end-of-candidates). Zero means adaptive: a direct pair is
	// nominated at once (what is still pending above it is another direct
	// path, usually a SYN into a private network or a filtering NAT that
	// will never answer); a relayed pair waits twice the round trip of its
	// check, between 20ms and 500ms, for a direct one.
	NominationWait time.Duration
	// ConnectTimeout bounds Connect from the arrival of the peer's
	// credentials (the start of checks) to selection; the wait for the peer
	// itself is bounded by Connect's context. Zero means 30s.
	ConnectTimeout time.Duration
	// ConsentInterval is the mean interval of consent checks on the selected
	// connection (RFC 7675 §5.1: randomised ±20%). Zero means 5s.
	ConsentInterval time.Duration
	// ConsentTimeout is how long without a consent response until consent
	// expires. Zero means 30s.
	ConsentTimeout time.Duration

	// LoggerFactory makes the agent's logger (scope "icetcp-agent"); nil
	// means logging.NewDefaultLoggerFactory().
	LoggerFactory logging.LoggerFactory
	// OnEvent, when set, receives state changes, the selected pair and
	// warnings about bad input, in order, on a goroutine of its own (it may
	// block without stalling the agent, but events queue up meanwhile).
	OnEvent func(Event)
	// Tracer, when set, sees every step of the agent (checks, answers,
	// punches, permissions, nomination, consent; see Tracer), on the
	// agent's goroutine: it must not block. nil: nothing is traced.
	Tracer Tracer
	// Rand is the source of credentials, tie-breaker and transaction IDs;
	// nil means crypto/rand.
	Rand io.Reader
	// Network opens the sockets; nil means the host's TCP stack. Tests use
	// an in-memory network.
	Network Network
	// StandardOnly turns off the extensions two icetcp agents negotiate
	// (frames above 8,192 bytes, nomination with the first check, in-band
	// end of stream): the agent then behaves exactly like a standard ICE-TCP
	// agent even toward icetcp peers. Zero: extensions are offered, and
	// used only when the peer offers them too.
	StandardOnly bool
	// Session offers the session layer between icetcp agents
	// (icetcp-session, used when both offer it): the stream survives a
	// move from the relay to a direct pair found later and a broken path
	// (session.go, move.go). It is opt-in while its known defects are
	// open (the README lists them: a resumption through real NATs can
	// resume at a wrong offset, and Close does not wait for the peer's
	// acknowledgement of the tail). Zero: a Conn stays on the pair first
	// selected, a session that went to the relay never leaves it, and a
	// broken connection ends the Conn.
	Session bool
	// ReplayBuffer bounds what a session keeps until the peer
	// acknowledges it (Write waits beyond it); it also bounds what is in
	// flight, so throughput to ReplayBuffer/RTT. Zero: 4 MiB.
	ReplayBuffer int
	// UpgradeWindow is how long after a relayed pair was selected the
	// agents keep trying direct pairs to move the session to (paced, the
	// NAT classes deciding which are worth it). Zero: 30 s.
	UpgradeWindow time.Duration
	// ResumeTimeout bounds how long a session whose path broke looks for
	// another before Read and Write fail. Zero: ConsentTimeout.
	ResumeTimeout time.Duration
	// Redial, when set, lets a session whose path broke with no other to
	// take over restart ICE: a new agent with this Config (fresh
	// credentials, candidates gathered anew: new mappings, new
	// allocations) connects over the channel Redial returns, to the same
	// peer, which restarts too, and the session carries on over the pair
	// they select, within ResumeTimeout. The rendezvous room the first
	// channel used is what it should join again. The agent closes the
	// channels Redial returns. nil: such a session fails.
	Redial func(ctx context.Context) (signaling.Channel, error)

	// resume is the session a restarted agent resumes (move.go).
	resume *session

	// allocate makes TURN allocations; nil means internal/turn over
	// Network. Tests set it to an in-memory relay.
	allocate allocateFunc
	// natCheck measures the local NAT; nil means internal/natcheck.
	natCheck natCheckFunc
	// proxyFor picks the proxy for a TURN server, from Proxy.
	proxyFor proxy.Func
}

// withDefaults returns cfg with zero fields filled in, or an error naming
// the first invalid field.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Role < RoleAuto || cfg.Role > RoleControlled {
		return cfg, fmt.Errorf("agent: config: unknown role %d", cfg.Role)
	}
	if cfg.DisableActive && cfg.DisablePassive && cfg.DisableSO {
		return cfg, fmt.Errorf("agent: config: every TCP candidate type is disabled")
	}
	for _, a := range cfg.Addrs {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			return cfg, fmt.Errorf("agent: config: address %q cannot be a host candidate", a)
		}
	}
	setDefault(&cfg.Pacing, 50*time.Millisecond)
	setDefault(&cfg.CheckTimeout, 10*time.Second)
	setDefault(&cfg.FirstMessageTimeout, 10*time.Second)
	setDefault(&cfg.ConnectTimeout, 30*time.Second)
	setDefault(&cfg.ConsentInterval, 5*time.Second)
	setDefault(&cfg.ConsentTimeout, 30*time.Second)
	setDefault(&cfg.UpgradeWindow, 30*time.Second)
	setDefault(&cfg.ResumeTimeout, cfg.ConsentTimeout)
	switch {
	case cfg.ReplayBuffer == 0:
		cfg.ReplayBuffer = defaultReplayBuffer
	case cfg.ReplayBuffer < 64<<10:
		return cfg, fmt.Errorf("agent: config: ReplayBuffer %d is below 64 KiB (one frame)", cfg.ReplayBuffer)
	}
	for name, d := range map[string]time.Duration{
		"Pacing": cfg.Pacing, "CheckTimeout": cfg.CheckTimeout,
		"FirstMessageTimeout": cfg.FirstMessageTimeout, "NominationWait": cfg.NominationWait,
		"ConnectTimeout": cfg.ConnectTimeout, "ConsentInterval": cfg.ConsentInterval,
		"ConsentTimeout": cfg.ConsentTimeout, "UpgradeWindow": cfg.UpgradeWindow, "ResumeTimeout": cfg.ResumeTimeout,
	} {
		if d < 0 {
			return cfg, fmt.Errorf("agent: config: %s is negative (%v)", name, d)
		}
	}
	if err := checkServers(cfg); err != nil {
		return cfg, err
	}
	if cfg.ConsentTimeout <= cfg.ConsentInterval {
		return cfg, fmt.Errorf("agent: config: ConsentTimeout %v must exceed ConsentInterval %v", cfg.ConsentTimeout, cfg.ConsentInterval)
	}
	pf, err := proxy.Setting(cfg.Proxy)
	switch {
	case err == nil:
		cfg.proxyFor = pf
	case cfg.Proxy != "" || len(cfg.TURNServers) > 0:
		return cfg, fmt.Errorf("agent: config: Proxy: %w", err)
	default:
		// A malformed proxy in the environment concerns only TURN, and
		// there is none.
		cfg.proxyFor, _ = proxy.Setting(proxy.Direct)
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = defaultLoggers()
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return cfg, nil
}

// checkServers refuses what gathering could only warn about later, when
// the peer may already be waiting: a STUN server that is not HOST:PORT, a
// TURN URI that does not parse.
func checkServers(cfg Config) error {
	for i, s := range cfg.STUNServers {
		host, port, err := net.SplitHostPort(s)
		if err == nil && (host == "" || port == "") {
			err = errors.New("empty host or port")
		}
		if err != nil {
			return fmt.Errorf("agent: config: STUNServers[%d] %q is not HOST:PORT: %w", i, s, err)
		}
	}
	for i, s := range cfg.TURNServers {
		if _, err := turn.ParseURI(s.URI); err != nil {
			return fmt.Errorf("agent: config: TURNServers[%d]: %w", i, err)
		}
	}
	return nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}

// defaultLoggers is the factory of agents given none, shared: pion's
// default factory builds five log.Loggers per logger, ~0.5 KiB that every
// one of 10,000 idle agents would hold. sharedFactory hands out one
// logger per scope.
var defaultLoggers = sync.OnceValue(func() logging.LoggerFactory {
	return &sharedFactory{f: logging.NewDefaultLoggerFactory(), loggers: map[string]logging.LeveledLogger{}}
})

type sharedFactory struct {
	f       logging.LoggerFactory
	mu      sync.Mutex
	loggers map[string]logging.LeveledLogger
}

func (s *sharedFactory) NewLogger(scope string) logging.LeveledLogger {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.loggers[scope]
	if !ok {
		l = s.f.NewLogger(scope)
		s.loggers[scope] = l
	}
	return l
}
