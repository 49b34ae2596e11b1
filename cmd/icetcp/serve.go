package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/signaling"
)

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	signalAddr := fs.String("signal-addr", ":8080", "address of the WebSocket rendezvous")
	stunAddr := fs.String("stun-addr", ":3478", "address of the STUN Binding server over TCP (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	srv, err := startServer(*signalAddr, *stunAddr, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "icetcp serve: signaling on ws://%s, STUN over TCP on %s\n", srv.signalAddr, srv.stunAddrString())
	<-ctx.Done()
	return srv.Close()
}

// server is the rendezvous plus the STUN server, as one process runs them.
type server struct {
	signalAddr net.Addr
	stunAddr   net.Addr
	http       *http.Server
	sig        *signaling.Server
	stun       *stuntcp.Server
	done       chan error
}

func startServer(signalAddr, stunAddr string, logOut io.Writer) (*server, error) {
	s := &server{sig: &signaling.Server{}, done: make(chan error, 2)}
	sl, err := net.Listen("tcp", signalAddr)
	if err != nil {
		return nil, fmt.Errorf("serve: signaling: %w", err)
	}
	s.signalAddr = sl.Addr()
	s.http = &http.Server{Handler: s.sig, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.done <- s.http.Serve(sl) }()
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
	return err
}
