package secure_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/icetcp/icetcp/secure"
	"github.com/icetcp/icetcp/signaling/signalingtest"
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

// Two peers of a short code: the sender makes it and reads it out, the
// receiver types it in; both join the code's room (Code.RoomName, with
// Code.RoomKey for the rendezvous's proof) and agree on a key over the
// room's signaling channel. Here an in-memory pair stands in for the
// rendezvous; the key then goes to Client and Server as in Example.
func ExampleExchangeCode() {
	made := secure.NewCode() // the sender prints made.String()
	typed, err := secure.ParseCode(made.String())
	if err != nil {
		panic(err)
	}
	senderCh, receiverCh := signalingtest.Pair()
	defer senderCh.Close()
	defer receiverCh.Close()
	ctx := context.Background()
	got := make(chan string)
	go func() {
		key, err := secure.ExchangeCode(ctx, receiverCh, typed, secure.CodeTaker)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- fmt.Sprintf("receiver agreed: %v", key.Valid())
	}()
	key, err := secure.ExchangeCode(ctx, senderCh, made, secure.CodeMaker)
	if err != nil {
		panic(err)
	}
	fmt.Println(<-got)
	fmt.Println("sender agreed:", key.Valid())
	// Output:
	// receiver agreed: true
	// sender agreed: true
}
