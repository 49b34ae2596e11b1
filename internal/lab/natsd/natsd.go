// Package natsd runs a NATS server with JetStream in this process
// (github.com/nats-io/nats-server/v2), for the tests, the lab and the
// benchmarks of rendezvous clusters: the real server, not a fake, started
// and stopped with the caller. The product links none of it.
package natsd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures Start.
type Config struct {
	// Addr is HOST:PORT to listen on; "" means 127.0.0.1 on a free port.
	Addr string
	// StoreDir holds JetStream's files; "" means a fresh temporary
	// directory, removed by Close. (Rendezvous rooms live in memory
	// streams; JetStream wants a directory all the same.)
	StoreDir string
	// Name is the server's name; "" means "icetcp-natsd".
	Name string
}

// Server is a running NATS server.
type Server struct {
	ns     *server.Server
	tmpDir string
}

// Start starts a NATS server with JetStream and waits until it accepts
// clients.
func Start(cfg Config) (*Server, error) {
	host, port := "127.0.0.1", -1 // -1: any free port
	if cfg.Addr != "" {
		h, p, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("natsd: address %q: %w", cfg.Addr, err)
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, fmt.Errorf("natsd: port %q: %w", p, err)
		}
		host, port = h, n
		if port == 0 {
			port = -1
		}
	}
	s := &Server{}
	dir := cfg.StoreDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "icetcp-natsd-"); err != nil {
			return nil, fmt.Errorf("natsd: %w", err)
		}
		s.tmpDir = dir
	}
	name := cfg.Name
	if name == "" {
		name = "icetcp-natsd"
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: name, Host: host, Port: port,
		JetStream: true, StoreDir: dir, JetStreamMaxMemory: 256 << 20, JetStreamMaxStore: 64 << 20,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		s.removeDir()
		return nil, fmt.Errorf("natsd: %w", err)
	}
	s.ns = ns
	go ns.Start()
	if !ns.ReadyForConnections(15 * time.Second) {
		s.Close()
		return nil, errors.New("natsd: the server is not ready for clients after 15s")
	}
	return s, nil
}

// URL is the clients' URL, nats://HOST:PORT.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Close shuts the server down, waits for it and removes its temporary
// directory.
func (s *Server) Close() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.removeDir()
}

func (s *Server) removeDir() {
	if s.tmpDir != "" {
		os.RemoveAll(s.tmpDir)
	}
}
