package agent

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icetcp/icetcp/internal/natcheck"
)

// NATCache measures this host's NAT once for many agents: a NAT class is
// a property of the host and its network, not of a session, so a media
// server with thousands of agents needs one measurement, not thousands.
// Give it to agents in Config.NAT; every agent of a Mux shares the Mux's
// own (Mux.NAT) unless given another. Agents that ask while a measurement
// runs wait for it; a class is trusted for Refresh, then measured again
// by the next agent that asks; a failed measurement is tried again after
// a short while, not cached for Refresh. Forget drops what it knows (after
// the host changed networks, say). The zero value works; it is safe for
// concurrent use.
type NATCache struct {
	// Refresh is how long a measured class is used; zero means 10 minutes.
	Refresh time.Duration

	measured atomic.Int64

	mu      sync.Mutex // guards following
	entries map[natKey]*natEntry
}

// DefaultNATRefresh is how long a NATCache trusts a class by default.
const DefaultNATRefresh = 10 * time.Minute

// natRetry is how soon a failed measurement may be tried again.
const natRetry = 30 * time.Second

// natKey is what a measurement depends on: the server it asks, the local
// address it leaves from.
type natKey struct {
	server string
	local  netip.Addr
}

type natEntry struct {
	done  chan struct{} // closed when the measurement ended
	class natcheck.Class
	err   error
	until time.Time // trusted until
}

// Measurements is how many NAT measurements the cache made.
func (c *NATCache) Measurements() int { return int(c.measured.Load()) }

// Forget drops every class: the next agent measures again.
func (c *NATCache) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = nil
}

// class returns the class for key, measuring it with measure (on the
// caller's goroutine) when nothing fresh is known; callers that ask
// meanwhile wait for that measurement. A measurement cut short by its
// caller's ctx (that agent closed) is not kept: a waiter measures again.
func (c *NATCache) class(ctx context.Context, key natKey, now time.Time, measure func(context.Context) (natcheck.Class, error)) (natcheck.Class, error) {
	for {
		c.mu.Lock()
		if c.entries == nil {
			c.entries = map[natKey]*natEntry{}
		}
		e := c.entries[key]
		if e != nil && e.ended() && now.After(e.until) {
			e = nil // stale: measure again
		}
		if e == nil {
			e = &natEntry{done: make(chan struct{})}
			c.entries[key] = e
			c.mu.Unlock()
			return c.measure(ctx, key, e, measure)
		}
		c.mu.Unlock()
		select {
		case <-e.done: // measured: ctx is not asked for a Done channel, which would stay
		default:
			select {
			case <-e.done:
			case <-ctx.Done():
				return natcheck.Class{}, ctx.Err()
			}
		}
		c.mu.Lock()
		class, err, kept := e.class, e.err, c.entries[key] == e
		c.mu.Unlock()
		if kept {
			return class, err
		}
		// Its measurer went away: try again.
	}
}

// measure runs one measurement for e and publishes it.
func (c *NATCache) measure(ctx context.Context, key natKey, e *natEntry, measure func(context.Context) (natcheck.Class, error)) (natcheck.Class, error) {
	c.measured.Add(1)
	class, err := measure(ctx)
	refresh := c.Refresh
	if refresh <= 0 {
		refresh = DefaultNATRefresh
	}
	if err != nil {
		refresh = natRetry
	}
	c.mu.Lock()
	e.class, e.err, e.until = class, err, time.Now().Add(refresh)
	if ctx.Err() != nil && c.entries[key] == e {
		delete(c.entries, key) // cut short by its caller, not a fact about the NAT
	}
	c.mu.Unlock()
	close(e.done)
	return class, err
}

func (e *natEntry) ended() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}
