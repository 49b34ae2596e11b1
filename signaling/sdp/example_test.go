package sdp_test

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/signaling/sdp"
)

// Two agents connect over an application's offer/answer exchange. Here the
// "exchange" hands each side's trickled lines straight to the other; a
// real application puts the first lines into its offer or answer and sends
// the later ones as trickle updates (or waits for LocalDone and sends
// sdp.Marshal(ch.Local()) in one description).
func Example() {
	var offerer, answerer *sdp.Channel
	offerer = sdp.NewChannel(sdp.ChannelConfig{Offerer: true, OnLocal: func(lines []string) {
		answerer.AddRemote(strings.Join(lines, "\r\n"))
	}})
	answerer = sdp.NewChannel(sdp.ChannelConfig{OnLocal: func(lines []string) {
		offerer.AddRemote(strings.Join(lines, "\r\n"))
	}})
	defer offerer.Close()
	defer answerer.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := agent.Config{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	a, _ := agent.New(cfg)
	b, _ := agent.New(cfg)
	defer a.Close()
	defer b.Close()

	connB := make(chan *agent.Conn, 1)
	go func() {
		c, err := b.Connect(ctx, answerer)
		if err != nil {
			fmt.Println("answerer:", err)
		}
		connB <- c
	}()
	ca, err := a.Connect(ctx, offerer)
	if err != nil {
		fmt.Println("offerer:", err)
		return
	}
	cb := <-connB
	if cb == nil {
		return
	}
	fmt.Println("offerer is", a.Stats().Role)
	fmt.Println("answerer is", b.Stats().Role)

	ca.Write([]byte("hello over SDP"))
	ca.CloseWrite()
	got, _ := io.ReadAll(cb)
	fmt.Println(string(got))
	// Output:
	// offerer is controlling
	// answerer is controlled
	// hello over SDP
}
