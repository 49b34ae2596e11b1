package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/signaling"
)

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	signalAddr := fs.String("signal-addr", ":8080", "address of the WebSocket rendezvous")
	stunAddr := fs.String("stun-addr", ":3478", "address of the STUN Binding server over TCP (empty: none)")
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
	fmt.Fprintf(stderr, "icetcp serve: signaling on %s, STUN over TCP on %s\n", srv.signalURL(), srv.stunAddrString())
	if srv.metrics != nil {
		fmt.Fprintf(stderr, "icetcp serve: metrics on http://%s/metrics\n", srv.metrics.addr)
	}
	<-ctx.Done()
	return srv.Close()
}

// server is the rendezvous plus the STUN server, as one process runs them.
type server struct {
	signalAddr net.Addr
	signalTLS  bool
	stunAddr   net.Addr
	http       *http.Server
	sig        *signaling.Server
	stun       *stuntcp.Server
	metrics    *metricsServer // nil without --metrics-addr
	done       chan error
}

func startServer(signalAddr, stunAddr string, logOut io.Writer, opt serveOptions) (*server, error) {
	tlsConf, err := opt.tlsConfig()
	if err != nil {
		return nil, err
	}
	s := &server{sig: opt.signalingServer(), done: make(chan error, 2)}
	sl, err := net.Listen("tcp", signalAddr)
	if err != nil {
		return nil, fmt.Errorf("serve: signaling: %w", err)
	}
	s.signalAddr = sl.Addr()
	if tlsConf != nil {
		sl, s.signalTLS = tls.NewListener(sl, tlsConf), true
	}
	s.http = &http.Server{Handler: s.sig, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { s.done <- s.http.Serve(sl) }()
	if opt.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		if err := registerStats(reg, "signal", s.sig.Stats); err != nil {
			s.Close()
			return nil, err
		}
		if s.metrics, err = startMetrics(opt.metricsAddr, reg); err != nil {
			s.Close()
			return nil, err
		}
	}
	if stunAddr != "" {
		tl, err := net.Listen("tcp", stunAddr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("serve: stun: %w", err)
		}
		s.stunAddr = tl.Addr()
		s.stun = &stuntcp.Server{}
		go func() { s.done <- s.stun.Serve(tl) }()
	}
	return s, nil
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

// Close stops both servers and waits for their connections.
func (s *server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.sig.Close()
	err := s.http.Shutdown(ctx)
	if s.stun != nil {
		err = errors.Join(err, s.stun.Close())
	}
	if s.metrics != nil {
		err = errors.Join(err, s.metrics.Close())
	}
	return err
}
