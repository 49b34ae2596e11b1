package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/natsd"
	"github.com/icetcp/icetcp/internal/lab/roomload"
	"github.com/icetcp/icetcp/internal/testnet"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// TestServeCluster1000Rooms: 1,000 rooms of two WebSocket clients over two
// `icetcp serve --cluster` processes on one real NATS server (a quarter of
// the rooms wholly on each node, half across them; each member sends a
// round of signaling and the room is complete when each has the other's).
// When a third of the rooms are done, node 1 is killed (SIGKILL: its
// connections end with the process). Every room completes: those wholly
// on node 0 in one session each, the others after node 1's clients joined
// again through node 0.
func TestServeCluster1000Rooms(t *testing.T) {
	const rooms, parallel = 1000, 100
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns, err := natsd.Start(natsd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	// All clients come from 127.0.0.1: the per-source limits are not
	// what this test is about.
	args := []string{"--cluster", ns.URL(), "--cluster-name", "scale", "--no-announce",
		"--max-conns", "10000", "--max-conns-per-source", "10000", "--max-rooms-per-source", "10000"}
	nodes := []*node{startNode(t, ctx, args...), startNode(t, ctx, args...)}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = testnet.Dialer("127.0.0.1").DialContext // 2,000+ connections: no TIME_WAIT left
	tr.MaxIdleConnsPerHost = -1
	d := &wsclient.Dialer{HTTPClient: &http.Client{Transport: tr}}

	var dead atomic.Bool
	homes := func(i int) [2]int { return [2]int{i % 2, (i / 2) % 2} }
	start := time.Now()
	results := roomload.Run(ctx, roomload.Config{
		Rooms: rooms, Parallel: parallel, Dialer: d,
		Name: func(i int) string { return fmt.Sprintf("scale-%04d", i) },
		URLs: func(i, side int) []string {
			if dead.Load() {
				return []string{nodes[0].url}
			}
			home := homes(i)[side]
			return []string{nodes[home].url, nodes[1-home].url}
		},
		Done: func(ended int) {
			if ended == rooms/3 {
				dead.Store(true)
				nodes[1].cmd.Process.Kill()
				<-nodes[1].exited
			}
		},
	})
	elapsed := time.Since(start)
	rejoined := 0
	for i, r := range results {
		if r.Err != nil {
			t.Errorf("room %d (members on nodes %v): %v", i, homes(i), r.Err)
			continue
		}
		if homes(i) == [2]int{0, 0} && r.Sessions != [2]int{1, 1} {
			t.Errorf("room %d, wholly on the live node, took sessions %v", i, r.Sessions)
		}
		if r.Sessions[0] > 1 || r.Sessions[1] > 1 {
			rejoined++
		}
	}
	if !dead.Load() || rejoined == 0 {
		t.Errorf("node 1 killed: %v; %d rooms started over: the node must die in the run", dead.Load(), rejoined)
	}
	if code, body := nodes[0].get(t, ctx, "/readyz"); code != http.StatusOK {
		t.Errorf("the live node after the run: readyz %d %q", code, body)
	}
	t.Logf("%d rooms in %v (%.0f rooms/s), %d started over after node 1 was killed", rooms, elapsed.Round(time.Millisecond), rooms/elapsed.Seconds(), rejoined)
}
