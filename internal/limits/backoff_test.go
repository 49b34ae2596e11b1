package limits

import (
	"testing"
	"testing/synctest"
	"time"
)

// An accept loop's retries grow from 5 ms to a second, start again after
// a success, and a closing server ends the wait at once.
func TestAcceptRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r AcceptRetry
		var got []time.Duration
		for range 10 {
			got = append(got, r.Next())
		}
		if got[0] != 5*time.Millisecond || got[1] != 10*time.Millisecond || got[9] != time.Second {
			t.Fatalf("back-offs %v", got)
		}
		r.Reset()
		start := time.Now()
		if !r.Wait(nil) || time.Since(start) != 5*time.Millisecond {
			t.Fatalf("after a reset the wait was %v", time.Since(start))
		}
		stop := make(chan struct{})
		close(stop)
		if r.Wait(stop) {
			t.Fatal("a closed server's wait went on")
		}
	})
}
