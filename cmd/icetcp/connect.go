package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/internal/proxy"
	"github.com/icetcp/icetcp/internal/turn"
	"github.com/icetcp/icetcp/secure"
)

type connectFlags struct {
	room, addrs, stun        string
	turn, turnUser, turnPass string
	turnSecret               string
	awaitDirect, noNATCheck  bool
	jsonOut, trace, quiet    bool
	timeout                  time.Duration
	loopback                 bool
	disable                  string
	primeTTL                 int
	resumeTimeout            time.Duration
	session                  bool
	proxy                    string
	secureFlags
	relayFlags
}

func connectCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f connectFlags
	f.register(fs)
	fs.StringVar(&f.room, "room", "", "room `NAME` shared with the peer, without end-to-end security: prefer --secret")
	fs.Usage = commandUsage(fs, "connect", connectHelp)
	f.relayFlags.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.fromEnv()
	secret, withSecret, err := f.parseSecret()
	if err != nil {
		return err
	}
	if err := checkSignal(f.signal); err != nil {
		return err
	}
	switch {
	case withSecret && f.room != "":
		return usageErr("--room and --secret exclude each other: with --secret the room is derived from the secret")
	case !withSecret && f.room == "":
		return usageErr("--secret (or --room) is required; make a secret with: icetcp secret")
	}
	cfg, err := f.agentConfig()
	if err != nil {
		return err
	}
	dialer, err := f.dialer()
	if err != nil {
		return err
	}
	for i := range cfg.TURNServers {
		cfg.TURNServers[i].TLSConfig = dialer.TLSConfig.Clone() // --ca for turns: too; a copy, as the rendezvous's HTTP transport writes to its own
	}
	cfg.Proxy, dialer.Proxy = f.proxy, f.proxy
	f.apply(&cfg)
	// A proxy that refuses us (credentials, a port it forbids) ends the
	// run at once: it is a configuration to fix, and waiting for the
	// checks to time out would only hide it.
	refusedCtx, refuse := context.WithCancelCause(ctx)
	defer refuse(nil)
	ev := newEventWriter(stderr, f.jsonOut, f.trace)
	defer ev.close() // after the agent's Close: its last events are in
	ev.onRefusal = refuse
	cfg.Tracer = ev
	cfg.LoggerFactory = quietLogger(stderr, f.jsonOut)
	room := f.room
	if withSecret {
		room = secure.RoomName(secret)
		// Only holders of the secret get into its room (the rendezvous
		// checks a proof with the room's key).
		dialer.RoomKey = secure.RoomKey(secret)
	} else {
		ev.warning("--room without --secret: anyone who knows the room name can take the room and read or feed the stream, and an ended stream cannot be told from a crashed peer; use --secret (make one with: icetcp secret)")
	}

	var proof *secure.Secret
	if withSecret {
		proof = &secret
	}
	if cfg.Session {
		cfg.Redial = redial(dialer, f.signal, room, proof, ev)
	}

	selectCtx, cancel := context.WithTimeout(refusedCtx, f.timeout)
	defer cancel()
	// Gathering (STUN, TURN, the NAT check) runs while we wait for the
	// peer: the candidates are ready when it is.
	a, ch, err := f.joinAndGather(selectCtx, cfg, dialer, room, ev)
	if err != nil {
		return ev.fail(f.jsonOut, proxyRefusal(refusedCtx, interrupted(ctx, err)))
	}
	defer a.Close()
	if withSecret {
		// The peer proves the secret before we commit to it.
		ch, err = confirmedPeer(selectCtx, dialer, f.signal, room, ch, secret, ev)
	}
	if err != nil {
		a.Close() // its last events come before the failure's
		return ev.fail(f.jsonOut, proxyRefusal(refusedCtx, interrupted(ctx, dialHint(err))))
	}
	defer ch.Close()
	conn, err := a.Connect(selectCtx, ch)
	if err != nil {
		return ev.fail(f.jsonOut, proxyRefusal(refusedCtx, interrupted(ctx, err)))
	}
	ev.selected(conn)
	cancel()
	ch.Close() // signaling is done: free the room for the rendezvous
	var stream halfConn = conn
	if withSecret {
		sc, took, err := secureConn(ctx, conn, secret)
		if err != nil {
			conn.Abort()
			return ev.fail(f.jsonOut, interrupted(ctx, err))
		}
		ev.secured(sc, took)
		stream = sc
	}
	ev.quiet = f.quiet
	m := newMeter(stderr, ev, f.jsonOut, f.quiet, conn, -1, 0, false)
	res, err := pump(ctx, stream, countingReader{stdin, &m.sent}, countingWriter{stdout, &m.recv})
	took, rate := m.finish()
	if err != nil {
		// Our side stops before its end: the peer is told it was
		// interrupted, not that the stream ended.
		conn.Abort()
		return ev.fail(f.jsonOut, interrupted(ctx, err))
	}
	path := m.pathText()
	if err := stream.Close(); err != nil && cfg.Session {
		// The session's Close waits for the peer's ACK of our last
		// bytes: without it they may be lost with a broken path.
		return ev.fail(f.jsonOut, fmt.Errorf("sending: %w", err))
	}
	sum := summary{verb: "sent", total: -1, sent: res.sent, recv: res.received, took: took, rate: rate, path: path}
	if st := conn.Agent().Stats().Session; st != nil {
		sum.paths = st.Paths
	}
	ev.summary(sum)
	return nil
}

// register adds the flags connect, send and receive share: the
// rendezvous, the candidates, the servers, the secret, the output.
func (f *connectFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.signal, "signal", "", "rendezvous `URL`, ws://HOST:PORT or wss://HOST:PORT (required; also $ICETCP_SIGNAL)")
	fs.StringVar(&f.addrs, "addrs", "", "comma-separated local IPs for host candidates (default: every interface address)")
	fs.StringVar(&f.stun, "stun", "", "comma-separated STUN servers over TCP, HOST:PORT, for server-reflexive candidates")
	fs.StringVar(&f.turn, "turn", "", "comma-separated TURN servers for relayed candidates (RFC 6062 over TCP):\n"+
		"turn:HOST[:PORT][?transport=tcp] or turns:HOST[:PORT] (TLS; --ca trusts a custom CA)")
	fs.StringVar(&f.turnUser, "turn-user", "", "TURN username (with --turn-secret: the user part of REST credentials)")
	fs.StringVar(&f.turnPass, "turn-pass", "", "TURN password (also $ICETCP_TURN_PASS)")
	fs.StringVar(&f.turnSecret, "turn-secret", "", "mint TURN REST credentials with this shared secret (also $ICETCP_TURN_SECRET)")
	fs.BoolVar(&f.awaitDirect, "await-direct", false, "nominate a relayed pair only once every direct pair failed (slow; to measure what the fast fallback saves)")
	fs.BoolVar(&f.noNATCheck, "no-natcheck", false, "do not measure this host's NAT against the STUN server")
	fs.BoolVar(&f.jsonOut, "json", false, "write events to stderr as one JSON object a line (progress events every second)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress line and no notices, only errors and the summary at the end")
	fs.BoolVar(&f.trace, "trace", false, "also write every step of the agent (checks, answers, punches, permissions, nomination) as events")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up if no pair is selected in this time (including the wait for the peer)")
	fs.BoolVar(&f.loopback, "loopback", false, "also gather loopback addresses (when --addrs is not given)")
	fs.StringVar(&f.disable, "disable", "", "comma-separated TCP candidate types not to offer: active,passive,so")
	fs.StringVar(&f.proxy, "proxy", "", "proxy for the rendezvous and the TURN servers: http://[USER:PASS@]HOST[:PORT] (HTTP CONNECT,\n"+
		"Basic credentials) or socks5://[USER:PASS@]HOST[:PORT]; direct: none (default: $HTTPS_PROXY, else $ALL_PROXY,\n"+
		"except hosts in $NO_PROXY; credentials in the environment stay out of the process list)")
	fs.IntVar(&f.primeTTL, "prime-ttl", 0, "send the first SYN of each simultaneous-open attempt with this IP TTL (0: off)")
	fs.BoolVar(&f.session, "session", true, "carry the stream in an icetcp session when the peer is an icetcp agent too (negotiated: a standard\n"+
		"peer sees plain ICE): start on whatever path works, move to a direct one found later, survive a broken\n"+
		"path by an ICE restart through the rendezvous; --session=false: plain ICE (the relay waits for a likely\n"+
		"punch, the first broken path ends the connection)")
	fs.DurationVar(&f.resumeTimeout, "resume-timeout", 0, "with --session, how long a session whose path broke looks for another before it fails\n"+
		"(0: the consent timeout, 30s); a crashed peer is told from a broken path only by this wait")
	f.secureFlags.register(fs)
}

// proxyRefusal is the proxy's refusal that ended ctx, if one did (err is
// then only its consequence), or err.
func proxyRefusal(ctx context.Context, err error) error {
	var pe *agent.ProxyError
	if cause := context.Cause(ctx); errors.As(cause, &pe) {
		return cause
	}
	return err
}

// interrupted is err, or the signal that ended ctx when ctx's end caused
// err: the user's Ctrl-C, not a failure of the connection.
func interrupted(ctx context.Context, err error) error {
	var ie *interruptedError
	if errors.As(context.Cause(ctx), &ie) {
		return ie
	}
	return err
}

func (f *connectFlags) agentConfig() (agent.Config, error) {
	var cfg agent.Config
	if f.addrs != "" {
		cfg.Addrs = []netip.Addr{}
		for _, s := range splitList(f.addrs) {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				return cfg, usageErr("--addrs: %v", err)
			}
			cfg.Addrs = append(cfg.Addrs, ip)
		}
	}
	if _, err := proxy.Setting(f.proxy); err != nil && f.proxy != "" {
		return cfg, usageErr("--proxy: %v", err)
	}
	cfg.IncludeLoopback = f.loopback
	cfg.PrimeTTL = f.primeTTL
	cfg.ResumeTimeout = f.resumeTimeout
	cfg.Session = f.session
	cfg.AwaitDirect, cfg.DisableNATCheck = f.awaitDirect, f.noNATCheck
	if f.turnPass == "" {
		f.turnPass = os.Getenv("ICETCP_TURN_PASS")
	}
	if f.turnSecret == "" {
		f.turnSecret = os.Getenv("ICETCP_TURN_SECRET")
	}
	if f.turn != "" {
		if f.turnSecret == "" && (f.turnUser == "" || f.turnPass == "") {
			return cfg, usageErr("--turn needs --turn-user and --turn-pass, or --turn-secret")
		}
		for _, u := range splitList(f.turn) {
			if _, err := turn.ParseURI(u); err != nil {
				return cfg, usageErr("--turn: %v", err)
			}
			cfg.TURNServers = append(cfg.TURNServers, agent.TURNServer{
				URI: u, Username: f.turnUser, Password: f.turnPass, Secret: f.turnSecret,
			})
		}
	} else if f.turnUser != "" || f.turnSecret != "" {
		return cfg, usageErr("--turn-user/--turn-secret without --turn")
	}
	cfg.STUNServers = splitList(f.stun)
	for _, s := range cfg.STUNServers {
		if host, port, err := net.SplitHostPort(s); err != nil || host == "" || port == "" {
			return cfg, usageErr("--stun %q: want HOST:PORT", s)
		}
	}
	if f.timeout <= 0 {
		return cfg, usageErr("--timeout must be positive")
	}
	for _, t := range splitList(f.disable) {
		switch t {
		case "active":
			cfg.DisableActive = true
		case "passive":
			cfg.DisablePassive = true
		case "so":
			cfg.DisableSO = true
		default:
			return cfg, usageErr("--disable: unknown TCP candidate type %q", t)
		}
	}
	return cfg, nil
}

func silentOr(jsonOut bool, err error) error {
	if jsonOut {
		return silentError{err}
	}
	return err
}

// quietLogger keeps the agent's own log lines to warnings and errors, so
// stderr stays readable (and parseable with --json, where they are off).
func quietLogger(w io.Writer, jsonOut bool) logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.Writer = w
	f.DefaultLogLevel = logging.LogLevelWarn
	if jsonOut {
		f.DefaultLogLevel = logging.LogLevelDisabled
	}
	// ICETCP_LOG=debug|info|warn shows the agent's log (also with --json,
	// whose readers skip lines that are not JSON).
	switch os.Getenv("ICETCP_LOG") {
	case "debug":
		f.DefaultLogLevel = logging.LogLevelDebug
	case "info":
		f.DefaultLogLevel = logging.LogLevelInfo
	case "warn":
		f.DefaultLogLevel = logging.LogLevelWarn
	}
	return f
}
