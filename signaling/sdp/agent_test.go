package sdp_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/signaling/sdp"
)

// An application that hands the peer's lines to AddRemote one at a time
// splits a=ice-ufrag from a=ice-pwd, which AddRemote cannot use: the agent
// must fail at once with AddRemote's reason, not wait for its deadline
// (issue 17: Connect hung until then, on both sides).
func TestAgentFailsFastOnUnusableRemote(t *testing.T) {
	ch := sdp.NewChannel(sdp.ChannelConfig{Offerer: true})
	defer ch.Close()
	a, err := agent.New(agent.Config{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, line := range []string{"a=ice-ufrag:abcd", "a=ice-pwd:0123456789abcdefghijkl", "a=candidate:1 1 TCP 2105458943 127.0.0.1 9 typ host tcptype active"} {
		ch.AddRemote(line) // its error is what Connect reports
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = a.Connect(ctx, ch)
	var re *sdp.RemoteError
	if !errors.As(err, &re) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect: %v, want a failure naming AddRemote's error", err)
	}
	if !strings.Contains(err.Error(), "a=ice-ufrag without a=ice-pwd") || strings.Count(err.Error(), "sdp:") != 1 {
		t.Errorf("%q: want the cause once, with one sdp: prefix", err)
	}
}
