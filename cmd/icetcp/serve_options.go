package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/icetcp/icetcp/signaling"
)

// serveOptions are serve's security, limit and observability flags: TLS
// for the rendezvous (and later the TURN listener), join tokens, the
// per-source limits and the metrics listener.
type serveOptions struct {
	tlsCert, tlsKey   string
	tokenSecret       string
	metricsAddr       string
	maxConns          int
	maxConnsPerSource int
	maxRooms          int
	maxRoomsPerSource int
	roomIdle          time.Duration
}

func (o *serveOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate chain: serve the rendezvous as wss:// (with --tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&o.tokenSecret, "token-secret", "", "require join tokens minted with this secret (icetcp token); also $ICETCP_TOKEN_SECRET")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on http://ADDR/metrics (empty: off)")
	fs.IntVar(&o.maxConns, "max-conns", signaling.DefaultMaxConns, "WebSocket connections at once")
	fs.IntVar(&o.maxConnsPerSource, "max-conns-per-source", signaling.DefaultMaxConnsPerSource, "WebSocket connections from one IPv4 address or IPv6 /64")
	fs.IntVar(&o.maxRooms, "max-rooms", signaling.DefaultMaxRooms, "rooms at once")
	fs.IntVar(&o.maxRoomsPerSource, "max-rooms-per-source", signaling.DefaultMaxRoomsPerSource, "rooms opened from one IPv4 address or IPv6 /64")
	fs.DurationVar(&o.roomIdle, "room-idle", signaling.DefaultRoomIdleTimeout, "close rooms in which nothing happened for this long")
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
	if o.tokenSecret != "" && len(o.tokenSecret) < signaling.MinTokenKeyLen {
		return usageErr("--token-secret: %d bytes, want at least %d (a random one: icetcp secret)", len(o.tokenSecret), signaling.MinTokenKeyLen)
	}
	for name, v := range map[string]int{"--max-conns": o.maxConns, "--max-conns-per-source": o.maxConnsPerSource, "--max-rooms": o.maxRooms, "--max-rooms-per-source": o.maxRoomsPerSource} {
		if v <= 0 {
			return usageErr("%s must be positive", name)
		}
	}
	return nil
}

// signalingServer is the rendezvous these options describe.
func (o *serveOptions) signalingServer() *signaling.Server {
	s := &signaling.Server{
		MaxConns:          o.maxConns,
		MaxConnsPerSource: o.maxConnsPerSource,
		MaxRooms:          o.maxRooms,
		MaxRoomsPerSource: o.maxRoomsPerSource,
		RoomIdleTimeout:   o.roomIdle,
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
