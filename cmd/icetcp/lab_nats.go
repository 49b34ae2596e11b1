//go:build lab

package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/icetcp/icetcp/internal/lab/natsd"
)

// labNATSCmd is `icetcp lab nats-server`: a NATS server with JetStream
// (internal/lab/natsd) for the lab's rendezvous clusters, until a signal.
// Only in a binary built with the lab tag.
func labNATSCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab nats-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:4222", "HOST:PORT to serve NATS clients on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := natsd.Start(natsd.Config{Addr: *addr})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stderr, "icetcp lab nats-server: %s ready\n", s.URL())
	<-ctx.Done()
	return nil
}
