package secure_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/icetcp/icetcp/secure"
)

// Two peers that share a secret: the controlling side is the Client, the
// other the Server. Here a pipe stands in for the agent's Conn.
func Example() {
	secret := secure.NewSecret() // one side prints it, the other types it in
	typed, err := secure.ParseSecret(secret.String())
	if err != nil {
		panic(err)
	}
	a, b := net.Pipe()
	done := make(chan string)
	go func() {
		conn, err := secure.Server(context.Background(), b, typed, secure.Config{})
		if err != nil {
			done <- err.Error()
			return
		}
		defer conn.Close()
		msg, err := io.ReadAll(conn) // ends at the peer's CloseWrite, not at a crash
		if err != nil {
			done <- err.Error()
			return
		}
		done <- string(msg)
	}()
	conn, err := secure.Client(context.Background(), a, secret, secure.Config{})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	conn.Write([]byte("hello over icetcp-secure"))
	conn.CloseWrite()
	fmt.Println(<-done)
	// Output: hello over icetcp-secure
}

// Both peers join the room derived from the secret; the rendezvous sees
// only this name.
func ExampleRoomName() {
	secret, err := secure.ParseSecret("07dn-z29h-s4bw-607d-nz29-hs4b-w66z")
	if err != nil {
		panic(err)
	}
	fmt.Println(secure.RoomName(secret))
	// Output: key.i76rtt636zdtwtmdo7ii3fougjyondtoztjsmf7drfc4ejqg7t3a
}
