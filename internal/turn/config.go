package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/pion/logging"
)

// DefaultRESTLifetime is how long minted REST credentials stay valid when
// Config.RESTLifetime is zero.
const DefaultRESTLifetime = 24 * time.Hour

// Config describes one allocation. The zero value is not usable: Server
// must name a server.
type Config struct {
	// Server is the TURN server; a zero Port means 3478 (5349 with TLS).
	Server URI
	// Username and Password are long-term credentials (RFC 8489 §9.2);
	// the realm and nonce come from the server's 401. Empty: no
	// credentials, which only a server without authentication accepts.
	Username, Password string
	// Secret, when set, mints TURN REST credentials (RESTCredentials) with
	// Username as the user part and an expiry RESTLifetime from now;
	// Password is then ignored.
	Secret string
	// RESTLifetime is the validity of minted REST credentials; zero means
	// DefaultRESTLifetime. A negative value mints expired credentials
	// (useful to test a server only).
	RESTLifetime time.Duration
	// TLSConfig is used for turns: (control and data connections). nil:
	// the system roots; an empty ServerName means Server.Host (an IP
	// literal is then checked against the certificate's IP SANs).
	TLSConfig *tls.Config
	// Dial opens the TCP connections to the server (control and data).
	// nil: a net.Dialer. The agent passes one that binds a chosen local
	// address; tests pass one into a lab namespace.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// LoggerFactory; nil means logging.NewDefaultLoggerFactory().
	LoggerFactory logging.LoggerFactory
}

// credentials returns the username and password to send, minting REST
// credentials valid until now+RESTLifetime when Secret is set.
func (cfg *Config) credentials(now time.Time) (user, pass string) {
	if cfg.Secret == "" {
		return cfg.Username, cfg.Password
	}
	life := cfg.RESTLifetime
	if life == 0 {
		life = DefaultRESTLifetime
	}
	return RESTCredentials(cfg.Secret, cfg.Username, now.Add(life))
}

func (cfg *Config) validate() error {
	if err := checkHost(cfg.Server.Host); err != nil {
		return fmt.Errorf("turn: config: Server: %w", err)
	}
	return nil
}

func (cfg *Config) logger() logging.LeveledLogger {
	f := cfg.LoggerFactory
	if f == nil {
		f = logging.NewDefaultLoggerFactory()
	}
	return f.NewLogger("icetcp-turn")
}

// tlsConfig is cfg.TLSConfig completed for this server, or nil for turn:.
// Data connections share its session cache, so their handshakes can resume
// the control connection's session.
func (cfg *Config) tlsConfig() *tls.Config {
	if !cfg.Server.TLS {
		return nil
	}
	var c *tls.Config
	if cfg.TLSConfig != nil {
		c = cfg.TLSConfig.Clone()
	} else {
		c = &tls.Config{}
	}
	if c.ServerName == "" {
		c.ServerName = cfg.Server.Host
	}
	if c.ClientSessionCache == nil {
		c.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	return c
}

// dialer opens connections to the server: TCP through cfg.Dial, then TLS
// when tc is set.
type dialer struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	tls  *tls.Config
}

func newDialer(cfg *Config) dialer {
	d := dialer{dial: cfg.Dial, tls: cfg.tlsConfig()}
	if d.dial == nil {
		var nd net.Dialer
		d.dial = nd.DialContext
	}
	return d
}

func (d dialer) dialContext(ctx context.Context, addr string) (net.Conn, error) {
	c, err := d.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("Config.Dial returned neither a connection nor an error")
	}
	if d.tls == nil {
		return c, nil
	}
	tc := tls.Client(c, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}
