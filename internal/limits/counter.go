package limits

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// Why a Counter refuses; Take wraps one of them with the numbers.
var (
	ErrTotal     = errors.New("limits: open in all at the limit")
	ErrPerSource = errors.New("limits: open from this source at the limit")
)

// Counter counts open things (connections, usually) in all and per source
// (SourceKey). It is safe for concurrent use.
type Counter struct {
	maxTotal, maxPerSource int

	mu    sync.Mutex // guards following
	total int
	by    map[netip.Prefix]int
}

// NewCounter returns a Counter that admits at most maxTotal in all and
// maxPerSource per source; a bound of zero or less admits nothing.
func NewCounter(maxTotal, maxPerSource int) *Counter {
	return &Counter{maxTotal: maxTotal, maxPerSource: maxPerSource}
}

// Take reserves a slot for a connection from ip, or says which limit
// refuses it (an error wrapping ErrPerSource or ErrTotal).
func (c *Counter) Take(ip netip.Addr) error {
	k := SourceKey(ip)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.by[k]; n >= c.maxPerSource {
		return fmt.Errorf("%w: %d open from %s, limit %d", ErrPerSource, n, k, c.maxPerSource)
	}
	if c.total >= c.maxTotal {
		return fmt.Errorf("%w: %d open, limit %d", ErrTotal, c.total, c.maxTotal)
	}
	if c.by == nil {
		c.by = make(map[netip.Prefix]int)
	}
	c.total++
	c.by[k]++
	return nil
}

// TakeShared reserves a slot counted in all only: for a source that
// stands for many (a trusted proxy), whose clients are counted elsewhere.
func (c *Counter) TakeShared() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= c.maxTotal {
		return fmt.Errorf("%w: %d open, limit %d", ErrTotal, c.total, c.maxTotal)
	}
	c.total++
	return nil
}

// GiveShared returns a slot TakeShared reserved.
func (c *Counter) GiveShared() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total > 0 {
		c.total--
	}
	if c.total == 0 {
		c.by = nil
	}
}

// Give returns the slot a successful Take reserved for ip.
func (c *Counter) Give(ip netip.Addr) {
	k := SourceKey(ip)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by[k] <= 0 {
		return
	}
	c.total--
	if c.by[k]--; c.by[k] == 0 {
		delete(c.by, k)
	}
	if c.total == 0 {
		c.by = nil // an idle counter (one per agent) keeps no map
	}
}

// Open returns how many slots are taken, in all.
func (c *Counter) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}
