package stuntcp

import (
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is a per-source token bucket in the GCRA form: each source
// has a theoretical arrival time tat; an event at now is allowed when, after
// adding one interval, tat is at most burst intervals ahead of now. Sources
// whose tat has passed hold no debt and are pruned when the table grows.
type rateLimiter struct {
	every   time.Duration // one token per interval
	burst   int           // tokens a quiet source may spend at once
	maxKeys int           // table bound; beyond it (after pruning) events are refused

	mu  sync.Mutex // guards following
	tat map[netip.Prefix]time.Time
}

func newRateLimiter(every time.Duration, burst, maxKeys int) *rateLimiter {
	return &rateLimiter{every: every, burst: burst, maxKeys: maxKeys, tat: make(map[netip.Prefix]time.Time)}
}

// allow reports whether key may have one more event at now, and counts it.
func (r *rateLimiter) allow(key netip.Prefix, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	tat, ok := r.tat[key]
	if !ok && len(r.tat) >= r.maxKeys {
		r.prune(now)
		if len(r.tat) >= r.maxKeys {
			return false
		}
	}
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(r.every)
	if next.Sub(now) > time.Duration(r.burst)*r.every {
		return false
	}
	r.tat[key] = next
	return true
}

// prune forgets sources that owe nothing; called with mu held.
func (r *rateLimiter) prune(now time.Time) {
	for k, tat := range r.tat {
		if !tat.After(now) {
			delete(r.tat, k)
		}
	}
}
