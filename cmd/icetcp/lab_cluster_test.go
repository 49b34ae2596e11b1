//go:build lab

package main

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/natlab"
)

// TestLabCluster: a real NATS server and two `serve --cluster` nodes in
// the lab's server namespace, each with the embedded relay and the fleet's
// TURN REST secret, each announcing both relays. Two peers behind
// symmetric NATs (no direct path), A through node 0 and B through node 1,
// with no TURN flag: they meet across the nodes, allocate on the relays
// their nodes announced with the credentials their nodes minted (B's,
// minted by node 1, work on node 0's relay and the other way round),
// connect over a relay and carry their payloads intact. Then node 1 is
// killed: a new pair both through node 0 still connects, and the dead
// relay in the announcement costs it nothing but a warning.
func TestLabCluster(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := []string{"ICETCP_MAIN=1", "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
	c, err := natlab.NewClusterLab(ctx, natlab.ClusterConfig{
		Binary: os.Args[0], Env: env, A: "symmetric", B: "symmetric",
		Delay: delayline.LinkConfig{Delay: 20 * time.Millisecond},
	})
	if err != nil {
		t.Fatalf("cluster lab: %v", err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
		if left, _ := natlab.Leftovers(natlab.BasePrefix); len(left) > 0 {
			t.Errorf("lab left behind: %v", left)
		}
	}()
	both := []string{natlab.NodeRelay(0), natlab.NodeRelay(1)}
	check := func(name string, tr natlab.ClusterTrial, allocated []string) {
		t.Helper()
		if !tr.OK || !natlab.IsRelayPath(tr.Path) {
			t.Fatalf("%s: ok=%v path %q: %s\nA: %s\nB: %s\nservers: %s", name, tr.OK, tr.Path, tr.Reason, tr.Logs[0], tr.Logs[1], c.Log())
		}
		for i := range 2 {
			if !sameSet(tr.Announced[i], both) || !sameSet(tr.Relays[i], allocated) {
				t.Fatalf("%s: side %d was announced %v and allocated on %v; want %v and %v\n%s", name, i, tr.Announced[i], tr.Relays[i], both, allocated, tr.Logs[i])
			}
		}
		t.Logf("%s: %s in %.0f ms (connect), %.0f ms in all", name, tr.Path, tr.ConnectMs, tr.ElapsedMs)
	}
	check("A through node 0, B through node 1", c.Trial(ctx, 0, 1, 256<<10, time.Minute), both)
	c.KillNode(1)
	check("node 1 killed; both through node 0", c.Trial(ctx, 0, 0, 256<<10, time.Minute), both[:1])
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
