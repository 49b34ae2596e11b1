package wsclient_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/rendezvous"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// Two clients meet in a room of a rendezvous on loopback; each Client is
// the signaling.Channel an agent connects over (agent.Agent.Connect).
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := &rendezvous.Server{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") // in an application: "wss://rendezvous.example:443"

	a, err := wsclient.Dial(ctx, url, "room-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	b, err := wsclient.Dial(ctx, url, "room-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	fmt.Println("members when b joined:", b.Members())

	if err := a.Send(ctx, signaling.Message{Type: signaling.TypeEndOfCandidates}); err != nil {
		fmt.Println(err)
		return
	}
	m, err := b.Recv(ctx)
	fmt.Println("b received:", m.Type, err)

	a.Close()
	m, err = b.Recv(ctx)
	fmt.Println("then:", m.Type, err)
	// Output:
	// members when b joined: 2
	// b received: end-of-candidates <nil>
	// then: peer-left <nil>
}
