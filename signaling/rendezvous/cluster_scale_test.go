package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/testnet"
	"github.com/icetcp/icetcp/signaling"
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
// the new one).
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
	var done atomic.Int64
	killed := make(chan struct{})
	urls := func(home int) []string {
		if dead.Load() {
			return []string{nodes[0].url}
		}
		return []string{nodes[home].url, nodes[1-home].url}
	}
	type outcome struct {
		sessions [2]int
		homes    [2]int
		err      error
	}
	results := make([]outcome, rooms)
	work := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				res := &results[i]
				res.homes = [2]int{i % 2, (i / 2) % 2}
				r := newScaleRoom(ctx, fmt.Sprintf("scale-%04d", i))
				var mwg sync.WaitGroup
				errs := make([]error, 2)
				for side := range 2 {
					mwg.Add(1)
					go func() {
						defer mwg.Done()
						res.sessions[side], errs[side] = r.member(ctx, d, func() []string { return urls(res.homes[side]) }, side)
					}()
				}
				mwg.Wait()
				r.cancel()
				res.err = errors.Join(errs...)
				if done.Add(1) == rooms/3 {
					close(killed)
				}
			}
		}()
	}
	go func() {
		<-killed
		dead.Store(true)
		nodes[1].kill(t)
	}()
	start := time.Now()
	for i := range rooms {
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	<-killed

	rejoined, wholly0 := 0, 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("room %d (members on nodes %v): %v", i, r.homes, r.err)
			continue
		}
		if r.homes == [2]int{0, 0} {
			wholly0++
			if r.sessions != [2]int{1, 1} {
				t.Errorf("room %d, wholly on the live node, took sessions %v", i, r.sessions)
			}
		}
		if r.sessions[0] > 1 || r.sessions[1] > 1 {
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

// scaleRoom is one room of the scale test: done when each side has
// received the other's whole round.
type scaleRoom struct {
	name   string
	ctx    context.Context // ends when the room is complete
	cancel context.CancelFunc
	mu     sync.Mutex
	got    [2]bool
}

const scaleCands = 3

func newScaleRoom(ctx context.Context, name string) *scaleRoom {
	r := &scaleRoom{name: name}
	r.ctx, r.cancel = context.WithCancel(ctx)
	return r
}

func (r *scaleRoom) received(side int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[side] = true
	if r.got[0] && r.got[1] {
		r.cancel()
	}
}

func (r *scaleRoom) complete() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[0] && r.got[1]
}

// member plays one side until the room is complete: it sends its round,
// and again after every peer-left (for the next peer); a lost connection
// joins again through the first node of urls() that takes it. It returns
// the sessions it needed.
func (r *scaleRoom) member(ctx context.Context, d *wsclient.Dialer, urls func() []string, side int) (sessions int, err error) {
	for !r.complete() {
		var c *wsclient.Client
		for c == nil {
			if r.complete() {
				return sessions, nil
			}
			if ctx.Err() != nil {
				return sessions, fmt.Errorf("side %d: never completed: %w", side, err)
			}
			for _, u := range urls() {
				if c, err = d.Dial(r.ctx, u, r.name); err == nil {
					break
				}
			}
			if c == nil {
				// room-full while a dead node's members are still on the
				// record, a dead node's refused connection: again.
				time.Sleep(10 * time.Millisecond)
			}
		}
		sessions++
		err = r.session(c, side)
		c.Close()
		if err != nil && ctx.Err() != nil {
			return sessions, fmt.Errorf("side %d: %w", side, err)
		}
	}
	return sessions, nil
}

// session runs one connection until the room is complete (nil) or the
// connection is lost.
func (r *scaleRoom) session(c *wsclient.Client, side int) error {
	ctx := r.ctx
	round := func() error {
		for i := range scaleCands {
			if err := c.Send(ctx, cand(fmt.Sprintf("s%d-%d", side, i))); err != nil {
				return err
			}
		}
		return c.Send(ctx, signaling.Message{Type: signaling.TypeEndOfCandidates})
	}
	if err := round(); err != nil {
		return err
	}
	got := 0
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			if r.complete() {
				return nil
			}
			return err
		}
		switch m.Type {
		case signaling.TypeCandidate:
			if !strings.Contains(m.Candidate, fmt.Sprintf("s%d-%d", 1-side, got)) {
				return fmt.Errorf("candidate %d out of order: %q", got, m.Candidate)
			}
			got++
		case signaling.TypeEndOfCandidates:
			if got != scaleCands {
				return fmt.Errorf("end-of-candidates after %d of %d candidates", got, scaleCands)
			}
			r.received(side)
		case signaling.TypePeerLeft:
			got = 0
			if err := round(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %+v", m)
		}
	}
}
