package wait

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Sleep(context.Background(), time.Second); err != nil || time.Since(start) != time.Second {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 1100*time.Millisecond {
			t.Fatalf("%v after %v", err, time.Since(start))
		}
		if err := Sleep(ctx, 0); err == nil {
			t.Fatal("a zero sleep hid the context's end")
		}
	})
}

func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d Deadline
		open := func() bool {
			select {
			case <-d.Done():
				return false
			default:
				return true
			}
		}
		if !open() {
			t.Fatal("the zero Deadline has passed")
		}
		d.Set(time.Now().Add(time.Second))
		time.Sleep(999 * time.Millisecond)
		if !open() {
			t.Fatal("passed early")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait() // the timer's function has run
		if open() {
			t.Fatal("did not pass")
		}
		d.Set(time.Now().Add(time.Second)) // reopened
		if !open() {
			t.Fatal("a new deadline did not reopen it")
		}
		d.Set(time.Time{})
		time.Sleep(time.Hour)
		synctest.Wait()
		if !open() {
			t.Fatal("no deadline passed")
		}
		d.Set(time.Now().Add(-time.Second))
		if open() {
			t.Fatal("a deadline in the past is open")
		}
	})
}
