package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/logging"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/icetcp/icetcp/internal/limits"
	"github.com/icetcp/icetcp/internal/relay"
	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/internal/trustproxy"
	"github.com/icetcp/icetcp/signaling/rendezvous"
)

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = commandUsage(fs, "serve", serveHelp)
	signalAddr := fs.String("signal-addr", ":8080", "address of the WebSocket rendezvous")
	stunAddr := fs.String("stun-addr", ":3478", "address of STUN and TURN (RFC 6062) over TCP (empty: neither)")
	var opt serveOptions
	opt.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if err := opt.check(); err != nil {
		return err
	}
	srv, err := startServer(*signalAddr, *stunAddr, stderr, opt)
	if err != nil {
		return err
	}
	srv.banner()
	<-ctx.Done()
	// SIGTERM (or Ctrl-C): drain, then close; a second signal ends the
	// process at once (interruptible).
	return srv.drainAndClose(opt.drain)
}

// server is the rendezvous, STUN and the TURN relay, as one process runs
// them: STUN and TURN share one TCP port, as coturn does.
type server struct {
	signalAddr    net.Addr
	signalTLS     bool
	stunAddr      net.Addr
	stunAlt       netip.AddrPort // RFC 5780 alternate address, if any
	stunListening []string
	turnsAddr     net.Addr // TURN over TLS, if any
	relayIP       netip.Addr
	turnSecret    string // REST secret (given, or made up when no credentials were)
	turnMadeUp    bool
	sig           *rendezvous.Server
	sigDone       chan error // Serve's result
	stun          *stuntcp.Server
	relay         *relay.Server
	metricsLn     net.Listener       // until startMetrics takes it
	metricsLog    *limits.RefusalLog // refusals at the metrics listener
	metrics       *metricsServer     // nil without --metrics-addr
	lf            logging.LoggerFactory
	say           *announcer
	nats          *natsConn // nil without --cluster
	clusterName   string
	stunLns       []net.Listener // STUN and TURN listeners, closed first on a drain
	draining      atomic.Bool
}

func startServer(signalAddr, stunAddr string, logOut io.Writer, opt serveOptions) (_ *server, err error) {
	tlsConf, err := opt.tlsConfig()
	if err != nil {
		return nil, err
	}
	s := &server{lf: serveLogger(logOut, opt.logFormat), say: newAnnouncer(logOut, opt.logFormat)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	sl, err := net.Listen("tcp", signalAddr)
	if err != nil {
		return nil, fmt.Errorf("serve: signaling: %w", err)
	}
	s.signalAddr, s.signalTLS = sl.Addr(), tlsConf != nil
	// Every listener of this process is one the relay must never connect
	// to: they are opened before the relay and named to it.
	own := []netip.AddrPort{addrPortOf(s.signalAddr)}
	if opt.metricsAddr != "" {
		if s.metricsLn, err = net.Listen("tcp", opt.metricsAddr); err != nil {
			sl.Close()
			return nil, fmt.Errorf("serve: metrics: %w", err)
		}
		own = append(own, addrPortOf(s.metricsLn.Addr()))
	}
	if stunAddr != "" {
		if err := s.startSTUNTURN(stunAddr, opt, tlsConf, own); err != nil {
			sl.Close()
			return nil, err
		}
	}
	// The rendezvous starts last: what it announces (this node's relay)
	// and where it keeps its rooms (the cluster) are known by then.
	sig := opt.signalingServer(s.lf)
	sig.Relays = s.announced(opt.relayOptions)
	if opt.cluster.urls != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		s.clusterName = opt.cluster.name
		s.nats, sig.Cluster, err = opt.cluster.startCluster(ctx, s.lf)
		cancel()
		if err != nil {
			sl.Close()
			return nil, err
		}
	}
	s.sig = sig
	s.sigDone = make(chan error, 1)
	go func() { s.sigDone <- s.sig.Serve(sl, tlsConf) }()
	if s.metricsLn != nil {
		if err := s.startMetrics(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// startSTUNTURN runs STUN (with RFC 5780 alternates when asked) and the
// TURN relay on stunAddr, and TURN over TLS when there is a certificate.
// own lists this process's other listeners.
func (s *server) startSTUNTURN(stunAddr string, opt serveOptions, tlsConf *tls.Config, own []netip.AddrPort) error {
	s.stun = &stuntcp.Server{LoggerFactory: s.lf}
	var primary net.Listener
	var extra []net.Listener // alternates: plain STUN only
	if opt.stunAlt != "" {
		p, a, err := parseAltAddr(stunAddr, opt.stunAlt)
		if err != nil {
			return err
		}
		ls, pa, aa, err := stuntcp.ListenRFC5780(p, a)
		if err != nil {
			return fmt.Errorf("serve: stun: %w", err)
		}
		s.stun.Primary, s.stun.Alternate, s.stunAlt = pa, aa, aa
		primary, extra = ls[0], ls[1:]
		for _, l := range ls {
			s.stunListening = append(s.stunListening, l.Addr().String())
		}
	} else {
		l, err := net.Listen("tcp", stunAddr)
		if err != nil {
			return fmt.Errorf("serve: stun: %w", err)
		}
		primary = l
	}
	closeAll := func() {
		for _, l := range append(extra, primary) {
			l.Close()
		}
	}
	for _, l := range extra {
		own = append(own, addrPortOf(l.Addr()))
	}
	var tl net.Listener
	if tlsConf != nil && opt.turnsAddr != "" {
		var err error
		if tl, err = net.Listen("tcp", opt.turnsAddr); err != nil {
			closeAll()
			return fmt.Errorf("serve: turns: %w", err)
		}
		extra = append(extra, tl) // closed with the others on failure
	}
	s.stunAddr = primary.Addr()
	relayIP, err := opt.relayAddr(addrPortOf(s.stunAddr).Addr())
	if err != nil {
		closeAll()
		return err
	}
	s.relayIP = relayIP
	users, err := opt.turnCredentials()
	if err != nil {
		closeAll()
		return err
	}
	s.turnSecret = opt.turnSecret
	if len(users) == 0 && s.turnSecret == "" {
		// No open relay, ever: without credentials the relay takes REST
		// credentials of a secret made up here and printed once.
		s.turnSecret, s.turnMadeUp = madeUpSecret(), true
	}
	rs, err := relay.New(relay.Config{
		Users: users, Secret: s.turnSecret, RelayIP: relayIP,
		MinPort: uint16(opt.relayMinPort), MaxPort: uint16(opt.relayMaxPort),
		AllowLoopbackPeers: opt.allowLoopbackPeers, AllowPrivatePeers: opt.allowPrivatePeers,
		MaxAllocationsPerUser: opt.turnUserQuota, MaxAllocations: opt.turnTotalQuota,
		OwnAddrs: own,
		STUN:     s.stun, LoggerFactory: s.lf,
	})
	if err != nil {
		closeAll()
		return fmt.Errorf("serve: turn: %w", err)
	}
	s.relay = rs
	// Behind a TCP load balancer, the client's address comes in a PROXY
	// v2 header from the trusted ones (and from nobody else).
	trusted := opt.trustedProxies()
	primary = trustproxy.Listen(primary, trusted, 0, 0)
	for i := range extra {
		wrapped := trustproxy.Listen(extra[i], trusted, 0, 0)
		if extra[i] == tl {
			tl = wrapped
		}
		extra[i] = wrapped
	}
	s.stunLns = append([]net.Listener{primary}, extra...)
	go rs.Serve(primary)
	for _, l := range extra {
		if l != tl {
			go s.stun.Serve(l)
		}
	}
	if tl != nil {
		s.turnsAddr = tl.Addr()
		go rs.ServeTLS(tl, tlsConf)
	}
	return nil
}

func (s *server) startMetrics() error {
	ln := s.metricsLn
	s.metricsLn = nil
	reg := prometheus.NewRegistry()
	if err := registerStats(reg, "signal", s.sig.Stats); err != nil {
		ln.Close()
		return err
	}
	if s.stun != nil {
		if err := registerStats(reg, "stun", func() stunMetrics { return newSTUNMetrics(s.stun.Stats()) }); err != nil {
			ln.Close()
			return err
		}
	}
	if s.relay != nil {
		if err := registerStats(reg, "turn", func() turnMetrics { return newTURNMetrics(s.relay.Stats()) }); err != nil {
			ln.Close()
			return err
		}
	}
	if err := s.registerNodeInfo(reg); err != nil {
		ln.Close()
		return err
	}
	s.metricsLog = limits.NewRefusalLog(s.lf.NewLogger("icetcp-metrics").Warnf, 0)
	var err error
	s.metrics, err = startMetrics(ln, reg, defaultMetricsLimits, s.metricsLog, s.healthHandlers())
	return err
}

// banner says where everything listens, and how to reach the relay.
func (s *server) banner() {
	s.say.say("signaling on %s, STUN and TURN over TCP on %s", s.signalURL(), s.stunAddrString())
	if s.stunAlt.IsValid() {
		s.say.say("STUN alternate address (RFC 5780) %s; listening on %s", s.stunAlt, strings.Join(s.stunListening, ", "))
	}
	if s.relay != nil {
		s.say.say("TURN relays on %s (connect --turn turn:%s)", s.relayIP, s.turnHostPort())
		if s.turnsAddr != nil {
			s.say.say("TURN over TLS on %s (connect --turn turns:HOST:%d)", s.turnsAddr, addrPortOf(s.turnsAddr).Port())
		}
		if s.turnMadeUp {
			s.say.say("no TURN credentials given: REST secret for this run is %s (connect --turn-secret)", s.turnSecret)
		}
	}
	if s.sig.Relays != nil {
		s.say.say("announcing to joining peers, with credentials minted for each: %s", strings.Join(s.sig.Relays.URIs, " "))
	}
	if s.sig.Cluster != nil {
		s.say.say("rendezvous node %s of cluster %s on %s", s.sig.Cluster.Node(), s.clusterName, s.nats.nc.ConnectedUrlRedacted())
	}
	if s.metrics != nil {
		s.say.say("metrics on http://%s/metrics", s.metrics.addr)
		s.say.say("health on http://%s/healthz and http://%s/readyz", s.metrics.addr, s.metrics.addr)
	}
	s.say.say("ready")
}

// turnHostPort is the relay's control address as clients should dial it.
func (s *server) turnHostPort() string {
	ap := addrPortOf(s.stunAddr)
	ip := ap.Addr()
	if ip.IsUnspecified() {
		ip = s.relayIP
	}
	return netip.AddrPortFrom(ip, ap.Port()).String()
}

// signalURL is what clients put in --signal.
func (s *server) signalURL() string {
	if s.signalTLS {
		return "wss://" + s.signalAddr.String()
	}
	return "ws://" + s.signalAddr.String()
}

func (s *server) stunAddrString() string {
	if s.stunAddr == nil {
		return "(off)"
	}
	return s.stunAddr.String()
}

// Close stops every server and waits for their connections.
func (s *server) Close() error {
	var err error
	if s.sig != nil {
		err = s.sig.Close() // closes its listeners, connections and cluster share
	}
	s.nats.Close()
	if s.sigDone != nil {
		if serr := <-s.sigDone; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	switch {
	case s.relay != nil:
		err = errors.Join(err, s.relay.Close()) // closes the STUN server too
	case s.stun != nil:
		err = errors.Join(err, s.stun.Close())
	}
	if s.metricsLn != nil {
		s.metricsLn.Close()
	}
	if s.metrics != nil {
		err = errors.Join(err, s.metrics.Close())
	}
	if s.metricsLog != nil {
		s.metricsLog.Close()
	}
	return err
}

// parseAltAddr reads --stun-addr (which must name a specific IP) and
// --stun-alt-addr (IP, or IP:PORT).
func parseAltAddr(stunAddr, alt string) (primary, alternate netip.AddrPort, err error) {
	primary, err = netip.ParseAddrPort(stunAddr)
	if err != nil || primary.Addr().IsUnspecified() {
		return primary, alternate, usageErr("--stun-alt-addr needs --stun-addr with a specific IP:PORT, not %q", stunAddr)
	}
	if alternate, err = netip.ParseAddrPort(alt); err == nil {
		return primary, alternate, nil
	}
	ip, err := netip.ParseAddr(alt)
	if err != nil {
		return primary, alternate, usageErr("--stun-alt-addr %q is neither IP nor IP:PORT", alt)
	}
	port := primary.Port()
	if port != 0 { // 0 stays 0: both ports picked by the kernel
		if port == 65535 {
			return primary, alternate, usageErr("--stun-alt-addr: no port after %d; give IP:PORT", port)
		}
		port++
	}
	return primary, netip.AddrPortFrom(ip, port), nil
}

func madeUpSecret() string {
	var b [18]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}
