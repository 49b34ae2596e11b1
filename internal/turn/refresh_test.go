package turn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestSchedule(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	s := newSchedule(t0, 600*time.Second)
	if !s.nextAlloc.Equal(t0.Add(300*time.Second)) || !s.expiry.Equal(t0.Add(600*time.Second)) {
		t.Errorf("lifetime 600 s: refresh at %v, expiry %v", s.nextAlloc.Sub(t0), s.expiry.Sub(t0))
	}
	if !s.next().Equal(t0.Add(permissionRefresh)) {
		t.Errorf("next wake %v, want the permission tick at %v", s.next().Sub(t0), permissionRefresh)
	}
	s.refreshed(t0.Add(300*time.Second), 60*time.Second)
	if !s.nextAlloc.Equal(t0.Add(330 * time.Second)) {
		t.Errorf("lifetime 60 s at 300 s: refresh at %v", s.nextAlloc.Sub(t0))
	}
	s.refreshed(t0, time.Second)
	if !s.nextAlloc.Equal(t0.Add(minRefreshDelay)) {
		t.Errorf("lifetime 1 s: refresh at %v, want the floor %v", s.nextAlloc.Sub(t0), minRefreshDelay)
	}
}

// The allocation is refreshed at half its lifetime and permissions every
// 240 s, for hours, with fake time: every interval is exact.
func TestRefreshKeepsAllocationAndPermissions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t, 600*time.Second)
		start := time.Now()
		a, err := Allocate(t.Context(), srv.config())
		if err != nil {
			t.Fatal(err)
		}
		if a.RelayedAddr() != fakeRelayed || a.MappedAddr() != fakeMapped {
			t.Errorf("relayed %v mapped %v", a.RelayedAddr(), a.MappedAddr())
		}
		ip1, ip2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
		time.Sleep(10 * time.Second)
		if err := a.Permit(t.Context(), ip1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(229 * time.Second) // one second before the permission tick
		if err := a.Permit(t.Context(), ip2, ip1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Hour)
		select {
		case <-a.Done():
			t.Fatalf("allocation ended: %v", a.Err())
		default:
		}
		refreshes := srv.refreshTimes()
		if len(refreshes) != int((2*time.Hour+239*time.Second)/(300*time.Second)) {
			t.Errorf("%d refreshes in 2 h 4 min", len(refreshes))
		}
		prev := start
		for i, r := range refreshes {
			if d := r.Sub(prev); d != 300*time.Second {
				t.Errorf("refresh %d came %v after the previous one, want 300 s", i+1, d)
			}
			prev = r
		}
		for _, ip := range []netip.Addr{ip1, ip2} {
			installs := srv.permTimes(ip)
			if len(installs) < 30 {
				t.Errorf("%s installed %d times", ip, len(installs))
			}
			for i := 1; i < len(installs); i++ {
				if d := installs[i].Sub(installs[i-1]); d > 240*time.Second || d <= 0 {
					t.Errorf("%s: %v between installs %d and %d, want at most 4 min (permissions live 5 min)", ip, d, i-1, i)
				}
			}
			if last := installs[len(installs)-1]; time.Since(last) > permissionLifetime {
				t.Errorf("%s last installed %v ago", ip, time.Since(last))
			}
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if !errors.Is(a.Err(), net.ErrClosed) || errors.Is(a.Err(), ErrAllocationLost) {
			t.Errorf("Err after Close = %v, want net.ErrClosed", a.Err())
		}
	})
}

// A 438 Stale Nonce on a refresh is answered with the new nonce, and the
// requests after it carry that nonce.
func TestRefreshStaleNonce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t, 600*time.Second)
		a, err := Allocate(t.Context(), srv.config())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Second)
		srv.setNonce("nonce-2")
		time.Sleep(time.Hour)
		select {
		case <-a.Done():
			t.Fatalf("allocation ended: %v", a.Err())
		default:
		}
		if err := a.Permit(t.Context(), netip.MustParseAddr("203.0.113.9")); err != nil {
			t.Errorf("Permit after the nonce changed: %v", err)
		}
		srv.mu.Lock()
		stale := srv.badNonce
		srv.mu.Unlock()
		if stale != 1 {
			t.Errorf("%d requests carried the stale nonce, want exactly the first refresh after the change", stale)
		}
		a.Close()
	})
}

// lostAfter runs an allocation on a fake server whose n-th Refresh gets
// answer(n) until the allocation ends, and returns it with how long it
// lived, in fake time.
func lostAfter(t *testing.T, answer func(n int) int) (*Allocation, time.Duration) {
	srv := newFakeServer(t, 600*time.Second)
	srv.refreshAnswer = answer
	start := time.Now()
	a, err := Allocate(t.Context(), srv.config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	<-a.Done()
	return a, time.Since(start)
}

// A refresh answered 437 ends the allocation at once, and says so.
func TestRefreshMismatchLosesAllocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, lived := lostAfter(t, func(n int) int {
			if n == 2 {
				return 437
			}
			return 0
		})
		if lived != 600*time.Second {
			t.Errorf("lost after %v, want at the second refresh (600 s)", lived)
		}
		err := a.Err()
		if !errors.Is(err, ErrAllocationLost) || !errors.Is(err, ErrAllocationMismatch) {
			t.Errorf("Err = %v, want ErrAllocationLost and ErrAllocationMismatch", err)
		}
		if _, err := a.Connect(t.Context(), netip.MustParseAddrPort("203.0.113.1:80")); !errors.Is(err, ErrAllocationLost) {
			t.Errorf("Connect on a lost allocation: %v", err)
		}
		if _, err := a.Accept(t.Context()); !errors.Is(err, ErrAllocationLost) {
			t.Errorf("Accept on a lost allocation: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close after loss: %v", err)
		}
	})
}

// A server that stops answering refreshes lets the allocation expire: Done
// closes at the expiry, not before and not after.
func TestRefreshUnansweredExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, lived := lostAfter(t, func(int) int { return -1 })
		if lived != 600*time.Second {
			t.Errorf("lost after %v, want at the expiry (600 s)", lived)
		}
		if err := a.Err(); !errors.Is(err, ErrAllocationLost) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("Err = %v, want an expiry", err)
		}
	})
}

// A server that goes away ends the allocation at once; a request waiting
// for an answer returns.
func TestServerGoneEndsAllocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer(t, 600*time.Second)
		srv.refreshAnswer = func(int) int { return -1 }
		a, err := Allocate(t.Context(), srv.config())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Second) // a refresh is waiting for its answer
		srv.closeAll()
		<-a.Done()
		if err := a.Err(); !errors.Is(err, ErrAllocationLost) || !strings.Contains(err.Error(), "server closed the control connection") {
			t.Errorf("Err = %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := a.Permit(ctx, netip.MustParseAddr("203.0.113.3")); !errors.Is(err, ErrAllocationLost) {
			t.Errorf("Permit: %v", err)
		}
		a.Close()
	})
}
