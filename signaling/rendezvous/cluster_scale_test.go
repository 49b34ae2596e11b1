package rendezvous

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/roomload"
	"github.com/icetcp/icetcp/internal/testnet"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// TestCluster1000Rooms: 1,000 rooms of two real WebSocket clients over two
// nodes (a quarter of the rooms wholly on each node, half across them):
// in each, both members send a round of signaling (candidates in order,
// end-of-candidates), and the room is complete when each has received the
// other's whole round. When a third of the rooms are done, node 1 dies.
// Every room completes: those wholly on node 0 in one session each, the
// others after node 1's clients joined again through node 0 (their peers
// on node 0 are told that the peer left, and send their round again for
// the new one). cmd/icetcp's TestServeCluster1000Rooms does the same with
// `icetcp serve` processes.
func TestCluster1000Rooms(t *testing.T) {
	checkGoroutines(t)
	const rooms, parallel = 1000, 100
	nodes := startCluster(t, startNATS(t), 2, func(s *Server) {
		s.MaxConns, s.MaxConnsPerSource, s.MaxRoomsPerSource = 10000, 10000, 10000
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = testnet.Dialer("127.0.0.1").DialContext // 2,000+ connections: no TIME_WAIT left
	tr.MaxIdleConnsPerHost = -1
	d := &wsclient.Dialer{HTTPClient: &http.Client{Transport: tr}}

	var dead atomic.Bool
	killed := make(chan struct{})
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
				nodes[1].kill(t)
				close(killed)
			}
		},
	})
	elapsed := time.Since(start)
	<-killed

	rejoined, wholly0 := 0, 0
	for i, r := range results {
		if r.Err != nil {
			t.Errorf("room %d (members on nodes %v): %v", i, homes(i), r.Err)
			continue
		}
		if homes(i) == [2]int{0, 0} {
			wholly0++
			if r.Sessions != [2]int{1, 1} {
				t.Errorf("room %d, wholly on the live node, took sessions %v", i, r.Sessions)
			}
		}
		if r.Sessions[0] > 1 || r.Sessions[1] > 1 {
			rejoined++
		}
	}
	if rejoined == 0 {
		t.Error("no client of the dead node had to join again: the node died after the run, not in it")
	}
	st := nodes[0].srv.Stats()
	t.Logf("%d rooms in %v (%.0f rooms/s), %d wholly on the live node, %d started over after node 1 died; live node: %d joins, events %v",
		rooms, elapsed.Round(time.Millisecond), rooms/elapsed.Seconds(), wholly0, rejoined, st.Joins, st.Cluster)
}
