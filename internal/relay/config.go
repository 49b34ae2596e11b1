package relay

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/stuntcp"
)

// Defaults for zero Config fields.
const (
	DefaultRealm                 = "icetcp"
	DefaultMinPort               = 49152
	DefaultMaxPort               = 65535
	DefaultMaxAllocationsPerUser = 10
	DefaultMaxAllocations        = 4096
	DefaultMaxConns              = 10000
	DefaultMaxConnsPerSource     = 64
	DefaultMaxPermissions        = 64
	DefaultFirstMessageTimeout   = 10 * time.Second
	DefaultIdleTimeout           = 5 * time.Minute
	DefaultNonceLifetime         = 10 * time.Minute
)

// MaxNonceLifetime bounds Config.NonceLifetime: the relay's nonces stand
// in for pion's, which live an hour from the minute they are made.
const MaxNonceLifetime = 50 * time.Minute

// Limits that are not worth a Config field.
const (
	// connectTimeout bounds the relay's TCP connect to a peer; RFC 6062
	// §5.2 asks for at least 30 seconds before a 447.
	connectTimeout = 30 * time.Second
	// permissionLifetime is RFC 8656 §9's 300 s; pion is told the same,
	// so that the relay's count of an allocation's permissions and pion's
	// permissions expire together.
	permissionLifetime = 300 * time.Second
	// maxTURNFrame is the largest frame pion's TURN server can take: it
	// reads into a 1,600-byte buffer and drops anything that does not fit
	// with a byte to spare (over TCP it ends the connection). A longer
	// frame is refused before its body is read.
	maxTURNFrame = 1599
	// maxPendingPerAllocation bounds the peer connections of one allocation
	// that wait for their ConnectionBind (pion closes them after 30 s). Each
	// holds at most its kernel receive buffer of early peer data.
	maxPendingPerAllocation = 32
	// portTries is how many random relay ports are tried before an Allocate
	// fails with 508.
	portTries = 64
	// closeWait bounds how long Close waits for pion's goroutines after it
	// closed everything they block on.
	closeWait = 5 * time.Second
)

// Config configures a Server. The zero value is not usable only because
// authentication is always required: set Users or Secret.
type Config struct {
	Realm  string            // "" → DefaultRealm ("icetcp")
	Users  map[string]string // long-term credentials, user → password
	Secret string            // TURN REST credentials (username "<expiry>:<user>", password base64(HMAC-SHA1(Secret, username))); both may be set

	// RelayIP is the address relayed candidates get. Zero: the IP of the
	// first listener given to Serve, which must not be unspecified then.
	// Behind a 1:1 NAT set it to the public address: relay sockets bind to
	// the listener's address and the relay translates between the two.
	RelayIP          netip.Addr
	MinPort, MaxPort uint16 // relay port range; zero: 49152–65535

	AllowLoopbackPeers bool // peers in 127.0.0.0/8 and ::1 (off by default: not an open relay)
	AllowPrivatePeers  bool // RFC 1918, RFC 4193, 100.64.0.0/10, link-local (off by default)

	// MaxAllocationsPerUser bounds one user's allocations at once
	// (coturn's --user-quota); beyond it Allocate gets 486. Zero: 10. A
	// user is a name of Users, or the user part of a REST username
	// ("<expiry>:<user>"); the two never share a quota, and REST
	// usernames without a user part all share one.
	MaxAllocationsPerUser int
	MaxAllocations        int // all users together (coturn's --total-quota); beyond it Allocate gets 486; zero: 4096

	MaxConns            int           // TCP connections on the listeners in all; zero: 10000
	MaxConnsPerSource   int           // TCP connections per source (IPv4 address or IPv6 /64) on the listeners; zero: 64
	MaxPermissions      int           // peer IPs one allocation may have permitted at once (CreatePermission beyond it: 403); zero: 64
	FirstMessageTimeout time.Duration // a new connection must send a complete STUN message within it (TLS handshake included); zero: 10s
	IdleTimeout         time.Duration // a TURN connection without an allocation is closed after this long without a request; zero: 5 minutes
	NonceLifetime       time.Duration // a NONCE is good this long, on the connection it was given on; zero: 10 minutes; at most MaxNonceLifetime

	// OwnAddrs are the other listening addresses of this host's services
	// (STUN alternates, a metrics or rendezvous port): the relay never
	// connects to them, whatever the peer policy allows. An unspecified IP
	// stands for every address of this host. The listeners given to Serve,
	// RelayIP and this host's interface addresses are own already.
	OwnAddrs []netip.AddrPort

	// STUN answers connections whose first message is a Binding request
	// (RFC 5780 attributes live there). nil: a default stuntcp.Server. The
	// Server takes it over: Close closes it.
	STUN *stuntcp.Server

	LoggerFactory logging.LoggerFactory // nil: logging.NewDefaultLoggerFactory(); scope "icetcp-relay"
	Now           func() time.Time      // nil: time.Now (REST expiry, nonces, permission lifetimes)
}

// ErrNoCredentials means a Config with neither Users nor Secret: the relay
// does not hand out anonymous allocations.
var ErrNoCredentials = errors.New("relay: no credentials configured (set Users or Secret); anonymous relaying is not offered")

// withDefaults validates cfg and fills its zero fields.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Users) == 0 && cfg.Secret == "" {
		return cfg, ErrNoCredentials
	}
	for u := range cfg.Users {
		if u == "" {
			return cfg, errors.New("relay: Users has an empty user name")
		}
	}
	if cfg.RelayIP.IsValid() {
		cfg.RelayIP = cfg.RelayIP.Unmap()
		if cfg.RelayIP.IsUnspecified() || cfg.RelayIP.IsMulticast() {
			return cfg, fmt.Errorf("relay: RelayIP %s cannot be given to peers", cfg.RelayIP)
		}
	}
	if cfg.MinPort == 0 {
		cfg.MinPort = DefaultMinPort
	}
	if cfg.MaxPort == 0 {
		cfg.MaxPort = DefaultMaxPort
	}
	if cfg.MinPort > cfg.MaxPort {
		return cfg, fmt.Errorf("relay: port range %d-%d is empty", cfg.MinPort, cfg.MaxPort)
	}
	if cfg.Realm == "" {
		cfg.Realm = DefaultRealm
	}
	if cfg.MaxAllocationsPerUser <= 0 {
		cfg.MaxAllocationsPerUser = DefaultMaxAllocationsPerUser
	}
	if cfg.MaxAllocations <= 0 {
		cfg.MaxAllocations = DefaultMaxAllocations
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MaxConnsPerSource <= 0 {
		cfg.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	if cfg.MaxPermissions <= 0 {
		cfg.MaxPermissions = DefaultMaxPermissions
	}
	if cfg.NonceLifetime <= 0 {
		cfg.NonceLifetime = DefaultNonceLifetime
	}
	if cfg.NonceLifetime > MaxNonceLifetime {
		return cfg, fmt.Errorf("relay: NonceLifetime %v is above %v", cfg.NonceLifetime, MaxNonceLifetime)
	}
	for _, ap := range cfg.OwnAddrs {
		if !ap.IsValid() {
			return cfg, errors.New("relay: OwnAddrs has an invalid address")
		}
	}
	if cfg.FirstMessageTimeout <= 0 {
		cfg.FirstMessageTimeout = DefaultFirstMessageTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.STUN == nil {
		cfg.STUN = &stuntcp.Server{LoggerFactory: cfg.LoggerFactory}
	}
	return cfg, nil
}
