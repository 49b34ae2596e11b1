package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/signaling"
)

type connectFlags struct {
	signal, room, addrs, stun string
	turn, turnUser, turnPass  string
	jsonOut                   bool
	timeout                   time.Duration
	loopback                  bool
	disable                   string
	primeTTL                  int
}

func connectCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f connectFlags
	fs.StringVar(&f.signal, "signal", "", "rendezvous URL, ws://HOST:PORT (required)")
	fs.StringVar(&f.room, "room", "", "room name shared with the peer (required)")
	fs.StringVar(&f.addrs, "addrs", "", "comma-separated local IPs for host candidates (default: every interface address)")
	fs.StringVar(&f.stun, "stun", "", "comma-separated STUN servers over TCP, HOST:PORT, for server-reflexive candidates")
	fs.StringVar(&f.turn, "turn", "", "TURN server URL for relayed candidates (not supported yet)")
	fs.StringVar(&f.turnUser, "turn-user", "", "TURN username")
	fs.StringVar(&f.turnPass, "turn-pass", "", "TURN password")
	fs.BoolVar(&f.jsonOut, "json", false, "write events to stderr as one JSON object a line")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up if no pair is selected in this time (including the wait for the peer)")
	fs.BoolVar(&f.loopback, "loopback", false, "also gather loopback addresses (when --addrs is not given)")
	fs.StringVar(&f.disable, "disable", "", "comma-separated TCP candidate types not to offer: active,passive,so")
	fs.IntVar(&f.primeTTL, "prime-ttl", 0, "send the first SYN of each simultaneous-open attempt with this IP TTL (0: off)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.signal == "" || f.room == "" {
		return usageErr("--signal and --room are required")
	}
	if f.turn != "" {
		return usageErr("--turn: the TURN relay is not supported yet")
	}
	cfg, err := f.agentConfig()
	if err != nil {
		return err
	}
	ev := &eventWriter{w: stderr, json: f.jsonOut}
	cfg.OnEvent = ev.agentEvent
	cfg.LoggerFactory = quietLogger(stderr, f.jsonOut)

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	ch, err := signaling.Dial(ctx, f.signal, f.room)
	if err != nil {
		ev.failed(err)
		return silentOr(f.jsonOut, err)
	}
	defer ch.Close()
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	conn, err := a.Connect(ctx, ch)
	if err != nil {
		ev.failed(err)
		return silentOr(f.jsonOut, err)
	}
	ev.selected(conn)
	cancel()
	return pump(conn, stdin, stdout)
}

func (f *connectFlags) agentConfig() (agent.Config, error) {
	var cfg agent.Config
	if f.addrs != "" {
		cfg.Addrs = []netip.Addr{}
		for _, s := range strings.Split(f.addrs, ",") {
			ip, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				return cfg, usageErr("--addrs: %v", err)
			}
			cfg.Addrs = append(cfg.Addrs, ip)
		}
	}
	cfg.IncludeLoopback = f.loopback
	cfg.PrimeTTL = f.primeTTL
	if f.stun != "" {
		for _, s := range strings.Split(f.stun, ",") {
			cfg.STUNServers = append(cfg.STUNServers, strings.TrimSpace(s))
		}
	}
	for _, t := range strings.Split(f.disable, ",") {
		switch strings.TrimSpace(t) {
		case "":
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

// pump copies stdin to the peer and the peer to stdout until both
// directions have ended; stdin's end is passed on as a half-close.
func pump(conn *agent.Conn, stdin io.Reader, stdout io.Writer) error {
	defer conn.Close()
	errs := make(chan error, 2)
	go func() {
		_, err := io.Copy(conn, stdin)
		if err == nil {
			err = conn.CloseWrite()
		}
		if err != nil {
			err = fmt.Errorf("sending: %w", err)
		}
		errs <- err
	}()
	go func() {
		_, err := io.Copy(stdout, conn)
		if err != nil {
			err = fmt.Errorf("receiving: %w", err)
		}
		errs <- err
	}()
	return errors.Join(<-errs, <-errs)
}

func silentOr(jsonOut bool, err error) error {
	if jsonOut {
		return silentError{err}
	}
	return err
}

// eventWriter writes agent events to stderr, as JSON lines with --json.
type eventWriter struct {
	mu   sync.Mutex // guards w
	w    io.Writer
	json bool
}

func (e *eventWriter) emit(v map[string]any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.json {
		b, _ := json.Marshal(v)
		fmt.Fprintf(e.w, "%s\n", b)
		return
	}
	switch v["event"] {
	case "selected":
		fmt.Fprintf(e.w, "icetcp: connected (%s) in %v ms\n  local  %s\n  remote %s\n", v["path"], v["connect_ms"], v["local"], v["remote"])
	case "failed":
		fmt.Fprintf(e.w, "icetcp: failed: %s\n", v["reason"])
	case "warning":
		fmt.Fprintf(e.w, "icetcp: warning: %s\n", v["message"])
	}
}

func (e *eventWriter) agentEvent(ev agent.Event) {
	switch ev.Type {
	case agent.EventState:
		e.emit(map[string]any{"event": "state", "state": ev.State.String()})
	case agent.EventWarning:
		e.emit(map[string]any{"event": "warning", "message": ev.Err.Error()})
	}
}

func (e *eventWriter) selected(c *agent.Conn) {
	e.emit(map[string]any{
		"event": "selected", "local": c.Local().Marshal(), "remote": c.Remote().Marshal(),
		"path": c.Path(), "connect_ms": c.ConnectTime().Milliseconds(),
	})
}

func (e *eventWriter) failed(err error) {
	e.emit(map[string]any{"event": "failed", "reason": err.Error()})
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
