package limits

import (
	"errors"
	"net"
	"time"
)

// AcceptRetry paces an accept loop through transient errors (EMFILE and
// its kin: out of descriptors), as net/http does: 5 ms, doubling up to a
// second, reset by a successful accept. Its wait ends early when the
// server closes, so Close never waits out a back-off. The zero value is
// ready; it belongs to one accept loop.
type AcceptRetry struct{ d time.Duration }

// Transient reports an accept error worth waiting out: the listener is
// fine, the process is short of something.
func Transient(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary() && !errors.Is(err, net.ErrClosed)
}

// Next is the wait before the next try.
func (r *AcceptRetry) Next() time.Duration {
	r.d = min(max(2*r.d, 5*time.Millisecond), time.Second)
	return r.d
}

// Wait waits Next, or until stop is closed; false means stop.
func (r *AcceptRetry) Wait(stop <-chan struct{}) bool {
	t := time.NewTimer(r.Next())
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// Reset follows a successful accept.
func (r *AcceptRetry) Reset() { r.d = 0 }
