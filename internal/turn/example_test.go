package turn_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/internal/turn"
)

// Allocate a relayed address over TCP, then open a connection through it
// to a peer and accept one from another peer.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	server, err := turn.ParseURI("turns:relay.example.com?transport=tcp")
	if err != nil {
		log.Fatal(err)
	}
	a, err := turn.Allocate(ctx, turn.Config{Server: server, Username: "alice", Secret: "shared-secret"})
	if err != nil {
		log.Fatal(err) // errors.Is(err, turn.ErrUnauthorized), turn.ErrQuota, ...
	}
	defer a.Close()
	fmt.Println("relayed candidate:", a.RelayedAddr(), "server-reflexive:", a.MappedAddr())

	// The server connects to the peer; conn carries the peer's bytes.
	conn, err := a.Connect(ctx, netip.MustParseAddrPort("203.0.113.7:40000"))
	if err != nil {
		log.Fatal(err) // errors.Is(err, turn.ErrConnectFailed): the peer did not answer the server
	}
	defer conn.Close()
	io.WriteString(conn, "hello")

	// A permitted peer connects to the relayed address.
	if err := a.Permit(ctx, netip.MustParseAddr("198.51.100.9")); err != nil {
		log.Fatal(err)
	}
	in, err := a.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	fmt.Println("accepted", in.RemoteAddr())
}

func ExampleParseURI() {
	for _, s := range []string{"turn:198.51.100.2", "turns:relay.example.com:443?transport=tcp", "[2001:db8::2]:3478", "turn:198.51.100.2?transport=udp"} {
		u, err := turn.ParseURI(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s (host %s, port %d, TLS %v)\n", u, u.Host, u.Port, u.TLS)
	}
	// Output:
	// turn:198.51.100.2:3478?transport=tcp (host 198.51.100.2, port 3478, TLS false)
	// turns:relay.example.com:443 (host relay.example.com, port 443, TLS true)
	// turn:[2001:db8::2]:3478?transport=tcp (host 2001:db8::2, port 3478, TLS false)
	// turn: URI "turn:198.51.100.2?transport=udp": transport=udp is not supported: this client relays TCP only (RFC 6062)
}
