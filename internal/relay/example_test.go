package relay_test

import (
	"errors"
	"fmt"
	"net"

	"github.com/pion/logging"
	turn "github.com/pion/turn/v5"

	"github.com/icetcp/icetcp/internal/relay"
)

// A relay on one port for STUN and TURN, with long-term credentials, and a
// pion client that gets a TCP allocation from it.
func Example() {
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelDisabled
	srv, err := relay.New(relay.Config{
		Users:         map[string]string{"alice": "secret"},
		LoggerFactory: quiet,
	})
	if err != nil {
		panic(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0") // `icetcp serve` uses :3478 and sets RelayIP
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	conn, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		panic(err)
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: l.Addr().String(),
		Conn:           turn.NewSTUNConn(conn),
		Username:       "alice",
		Password:       "secret",
		LoggerFactory:  quiet,
	})
	if err != nil {
		panic(err)
	}
	if err := client.Listen(); err != nil {
		panic(err)
	}
	alloc, err := client.AllocateTCP()
	if err != nil {
		panic(err)
	}
	relayed := alloc.Addr().(*net.TCPAddr)
	fmt.Println("relayed address on the listener's IP:", relayed.IP.String() == "127.0.0.1")
	fmt.Println("allocations:", srv.Stats().Allocations)

	alloc.Close()
	client.Close()
	conn.Close()
	if err := srv.Close(); err != nil {
		panic(err)
	}
	fmt.Println("Serve returned ErrServerClosed:", errors.Is(<-served, relay.ErrServerClosed))
	// Output:
	// relayed address on the listener's IP: true
	// allocations: 1
	// Serve returned ErrServerClosed: true
}
