// Package roomload runs rooms of two real WebSocket clients against
// rendezvous nodes, for the tests of clusters (in process and `icetcp
// serve` processes): in each room both members send a round of signaling
// (candidates in order, end-of-candidates), and the room is complete when
// each has received the other's whole round. A member whose connection is
// lost (its node died) joins again through the nodes it is given and
// sends its round again; a member told that its peer left sends its round
// again for the next one. The product links none of it.
package roomload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// Config configures Run.
type Config struct {
	Rooms, Parallel int
	// Name names room i (it must be a valid room name).
	Name func(i int) string
	// URLs are the nodes member side of room i tries, in order, each time
	// it joins.
	URLs   func(i, side int) []string
	Dialer *wsclient.Dialer
	// Done, if set, is called after each room ends, with the number of
	// rooms ended so far.
	Done func(ended int)
}

// Result is one room's outcome.
type Result struct {
	Sessions [2]int // connections each member needed
	Err      error
}

// Run runs cfg.Rooms rooms, cfg.Parallel at a time, until each completes
// or ctx ends.
func Run(ctx context.Context, cfg Config) []Result {
	results := make([]Result, cfg.Rooms)
	work := make(chan int)
	var mu sync.Mutex
	ended := 0
	var wg sync.WaitGroup
	for range cfg.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r := newRoom(ctx, cfg.Name(i))
				var mwg sync.WaitGroup
				errs := make([]error, 2)
				for side := range 2 {
					mwg.Add(1)
					go func() {
						defer mwg.Done()
						results[i].Sessions[side], errs[side] = r.member(ctx, cfg.Dialer, func() []string { return cfg.URLs(i, side) }, side)
					}()
				}
				mwg.Wait()
				r.cancel()
				results[i].Err = errors.Join(errs...)
				mu.Lock()
				ended++
				n := ended
				mu.Unlock()
				if cfg.Done != nil {
					cfg.Done(n)
				}
			}
		}()
	}
	for i := range cfg.Rooms {
		work <- i
	}
	close(work)
	wg.Wait()
	return results
}

// Cand is a candidate line tagged with tag.
func Cand(tag string) signaling.Message {
	return signaling.Message{Type: signaling.TypeCandidate, Candidate: "candidate:1 1 TCP 2128609279 10.0.0.1 " + tag + " 9 typ host tcptype active"}
}

// room is one room: done when each side has received the other's whole
// round.
type room struct {
	name   string
	ctx    context.Context // ends when the room is complete
	cancel context.CancelFunc
	mu     sync.Mutex
	got    [2]bool
}

const cands = 3

func newRoom(ctx context.Context, name string) *room {
	r := &room{name: name}
	r.ctx, r.cancel = context.WithCancel(ctx)
	return r
}

func (r *room) received(side int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[side] = true
	if r.got[0] && r.got[1] {
		r.cancel()
	}
}

func (r *room) complete() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[0] && r.got[1]
}

// member plays one side until the room is complete: it sends its round,
// and again after every peer-left (for the next peer); a lost connection
// joins again through the first node of urls() that takes it. It returns
// the sessions it needed.
func (r *room) member(ctx context.Context, d *wsclient.Dialer, urls func() []string, side int) (sessions int, err error) {
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
				// Refused by every node (room-full while a dead node's
				// member is still on the record, a dead node's refused
				// connection): a client's back-off, then again.
				backoff(r.ctx, 10*time.Millisecond)
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

func backoff(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// session runs one connection until the room is complete (nil) or the
// connection is lost.
func (r *room) session(c *wsclient.Client, side int) error {
	ctx := r.ctx
	round := func() error {
		for i := range cands {
			if err := c.Send(ctx, Cand(fmt.Sprintf("s%d-%d", side, i))); err != nil {
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
			if !strings.Contains(m.Candidate, fmt.Sprintf("s%d-%d ", 1-side, got)) {
				return fmt.Errorf("candidate %d out of order: %q", got, m.Candidate)
			}
			got++
		case signaling.TypeEndOfCandidates:
			if got != cands {
				return fmt.Errorf("end-of-candidates after %d of %d candidates", got, cands)
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
