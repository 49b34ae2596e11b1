package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/relay"
	"github.com/icetcp/icetcp/signaling/rendezvous"
)

// serveOptions are serve's flags beside the two addresses: TLS for the
// rendezvous and TURN, join tokens, per-source limits, the metrics
// listener, the RFC 5780 alternate address and the TURN relay's
// credentials and policy.
type serveOptions struct {
	tlsCert, tlsKey    string
	stunAlt            string
	turnUsers          stringList
	turnPasses         stringList
	turnUsersFile      string
	turnSecret         string
	turnsAddr          string
	relayIP            string
	relayMinPort       uint
	relayMaxPort       uint
	allowLoopbackPeers bool
	allowPrivatePeers  bool
	tokenSecret        string
	metricsAddr        string
	maxConns           int
	maxConnsPerSource  int
	maxRooms           int
	maxRoomsPerSource  int
	roomIdle           time.Duration
	turnUserQuota      int
	turnTotalQuota     int
	cluster            clusterOptions
	relayOptions
	opsOptions
}

func (o *serveOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate chain: serve the rendezvous as wss:// (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&o.tokenSecret, "token-secret", "", "require join tokens minted with this secret (icetcp token); also $ICETCP_TOKEN_SECRET")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on http://ADDR/metrics (empty: off)")
	fs.IntVar(&o.maxConns, "max-conns", rendezvous.DefaultMaxConns, "WebSocket connections at once")
	fs.IntVar(&o.maxConnsPerSource, "max-conns-per-source", rendezvous.DefaultMaxConnsPerSource, "WebSocket connections from one IPv4 address or IPv6 /64")
	fs.IntVar(&o.maxRooms, "max-rooms", rendezvous.DefaultMaxRooms, "rooms at once")
	fs.IntVar(&o.maxRoomsPerSource, "max-rooms-per-source", rendezvous.DefaultMaxRoomsPerSource, "rooms opened from one IPv4 address or IPv6 /64")
	fs.DurationVar(&o.roomIdle, "room-idle", rendezvous.DefaultRoomIdleTimeout, "close rooms in which nothing happened for this long")
	fs.StringVar(&o.stunAlt, "stun-alt-addr", "", "RFC 5780 alternate IP[:PORT] of the STUN server (PORT default: the --stun-addr port + 1);\n"+
		"the server then listens on both IPs and both ports, sends OTHER-ADDRESS and runs SYN probes for natcheck;\n"+
		"needs --stun-addr with a specific IP")
	fs.Var(&o.turnUsers, "turn-user", "TURN long-term user (repeatable, paired in order with --turn-pass)")
	fs.Var(&o.turnPasses, "turn-pass", "TURN long-term password (repeatable)")
	fs.StringVar(&o.turnUsersFile, "turn-users-file", "", "file of TURN users, one user:password a line (# comments)")
	fs.StringVar(&o.turnSecret, "turn-secret", "", "accept TURN REST credentials made with this secret; also $ICETCP_TURN_SECRET\n"+
		"(with neither users nor a secret, serve makes up a secret and prints it)")
	fs.StringVar(&o.turnsAddr, "turns-addr", "", "also serve TURN over TLS (turns:) on this address; needs --tls-cert")
	fs.StringVar(&o.relayIP, "relay-ip", "", "address of relayed candidates (default: the --stun-addr IP, else the first global address)")
	fs.UintVar(&o.relayMinPort, "relay-min-port", 49152, "lowest relay port")
	fs.UintVar(&o.relayMaxPort, "relay-max-port", 65535, "highest relay port")
	fs.BoolVar(&o.allowLoopbackPeers, "allow-loopback-peers", false, "let the relay connect to loopback peers (tests, demos)")
	fs.BoolVar(&o.allowPrivatePeers, "allow-private-peers", false, "let the relay connect to private-range peers (RFC 1918, RFC 4193, 100.64/10)")
	fs.IntVar(&o.turnUserQuota, "turn-user-quota", relay.DefaultMaxAllocationsPerUser, "TURN allocations one user may hold at once (coturn --user-quota); over it Allocate gets 486.\n"+
		"One user is a long-term user name or the user part of REST credentials; REST usernames without a user part share one quota")
	fs.IntVar(&o.turnTotalQuota, "turn-total-quota", relay.DefaultMaxAllocations, "TURN allocations the relay holds at once, all users together (coturn --total-quota)")
	o.cluster.register(fs)
	o.relayOptions.register(fs)
	o.opsOptions.register(fs)
}

// defaultServeOptions are the flags' defaults, for servers started in
// process (demo).
func defaultServeOptions() serveOptions {
	var o serveOptions
	o.register(flag.NewFlagSet("", flag.ContinueOnError))
	return o
}

// check validates the flags and fills the token secret from the environment.
func (o *serveOptions) check() error {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return usageErr("--tls-cert and --tls-key go together")
	}
	if o.tokenSecret == "" {
		o.tokenSecret = os.Getenv("ICETCP_TOKEN_SECRET")
	}
	if o.turnSecret == "" {
		o.turnSecret = os.Getenv("ICETCP_TURN_SECRET")
	}
	if len(o.turnUsers) != len(o.turnPasses) {
		return usageErr("%d --turn-user but %d --turn-pass: give them in pairs", len(o.turnUsers), len(o.turnPasses))
	}
	if o.turnsAddr != "" && o.tlsCert == "" {
		return usageErr("--turns-addr needs --tls-cert and --tls-key")
	}
	if o.relayMinPort == 0 || o.relayMaxPort > 65535 || o.relayMinPort > o.relayMaxPort {
		return usageErr("--relay-min-port %d and --relay-max-port %d are not a port range", o.relayMinPort, o.relayMaxPort)
	}
	if o.tokenSecret != "" && len(o.tokenSecret) < rendezvous.MinTokenKeyLen {
		return usageErr("--token-secret: %d bytes, want at least %d (a random one: icetcp secret)", len(o.tokenSecret), rendezvous.MinTokenKeyLen)
	}
	for name, v := range map[string]int{"--max-conns": o.maxConns, "--max-conns-per-source": o.maxConnsPerSource, "--max-rooms": o.maxRooms, "--max-rooms-per-source": o.maxRoomsPerSource,
		"--turn-user-quota": o.turnUserQuota, "--turn-total-quota": o.turnTotalQuota} {
		if v <= 0 {
			return usageErr("%s must be positive", name)
		}
	}
	if err := o.cluster.check(); err != nil {
		return err
	}
	if err := o.relayOptions.check(o.turnSecret); err != nil {
		return err
	}
	return o.opsOptions.check()
}

// signalingServer is the rendezvous these options describe.
func (o *serveOptions) signalingServer(lf logging.LoggerFactory) *rendezvous.Server {
	s := &rendezvous.Server{
		LoggerFactory:     lf,
		MaxConns:          o.maxConns,
		MaxConnsPerSource: o.maxConnsPerSource,
		MaxRooms:          o.maxRooms,
		MaxRoomsPerSource: o.maxRoomsPerSource,
		RoomIdleTimeout:   o.roomIdle,
		TrustedProxies:    o.trustedProxies(),
	}
	if o.tokenSecret != "" {
		s.TokenKey = []byte(o.tokenSecret)
	}
	return s
}

// tlsConfig loads the certificate, or returns nil without TLS flags.
func (o *serveOptions) tlsConfig() (*tls.Config, error) {
	if o.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("serve: --tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// turnCredentials are the long-term users from the flags and the file.
func (o *serveOptions) turnCredentials() (map[string]string, error) {
	users := map[string]string{}
	for i, u := range o.turnUsers {
		users[u] = o.turnPasses[i]
	}
	if o.turnUsersFile != "" {
		b, err := os.ReadFile(o.turnUsersFile)
		if err != nil {
			return nil, fmt.Errorf("serve: --turn-users-file: %w", err)
		}
		for n, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			u, p, ok := strings.Cut(line, ":")
			if !ok || u == "" || p == "" {
				return nil, fmt.Errorf("serve: --turn-users-file %s:%d: want user:password", o.turnUsersFile, n+1)
			}
			users[u] = p
		}
	}
	return users, nil
}

// relayAddr is the address relayed candidates get: --relay-ip, else the
// STUN/TURN listener's own IP, else the first global unicast address of
// this host (loopback if it has none).
func (o *serveOptions) relayAddr(listenIP netip.Addr) (netip.Addr, error) {
	if o.relayIP != "" {
		ip, err := netip.ParseAddr(o.relayIP)
		if err != nil || ip.IsUnspecified() {
			return netip.Addr{}, usageErr("--relay-ip %q is not a concrete IP address", o.relayIP)
		}
		return ip, nil
	}
	if listenIP.IsValid() && !listenIP.IsUnspecified() {
		return listenIP, nil
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && p.Addr().IsGlobalUnicast() {
			return p.Addr(), nil
		}
	}
	return netip.MustParseAddr("127.0.0.1"), nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
