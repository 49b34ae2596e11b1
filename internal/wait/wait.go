// Package wait has the two ways the code waits on time besides its event
// loops: a sleep that its context ends, and a resettable deadline whose
// channel a select can wait on (net.Conn's SetReadDeadline, for conns that
// are not sockets). Both are timers, never time.Sleep, so cancellation is
// prompt and testing/synctest drives them in virtual time.
package wait

import (
	"context"
	"sync"
	"time"
)

// Sleep waits d, or until ctx ends (then it returns ctx's error). A d of
// zero or less only reports ctx's state.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Deadline is a resettable point in time whose channel (Done) is closed
// when it passes. The zero value has no deadline. It is safe for
// concurrent use.
type Deadline struct {
	mu     sync.Mutex // guards following
	timer  *time.Timer
	ch     chan struct{}
	passed bool
}

// Set moves the deadline to t; the zero t removes it. A deadline that had
// passed is open again until the new one passes.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.ch == nil || d.passed {
		d.ch = make(chan struct{})
		d.passed = false
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.ch)
		d.passed = true
		return
	}
	ch := d.ch
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.ch == ch && !d.passed {
			close(ch)
			d.passed = true
		}
	})
}

// Done is closed when the deadline passes; wait on it right after taking
// it (a later Set makes a new one).
func (d *Deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}
