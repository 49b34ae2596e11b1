package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/internal/lab/memnet"
	"github.com/icetcp/icetcp/internal/natcheck"
)

// Many agents, one measurement: every agent given the cache gets the same
// class, measured once while they all asked at once.
func TestSyncNATCacheSharedByAgents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		stunOn(t, n, stunAddr)
		var calls atomic.Int32
		cache := &NATCache{}
		var agents []*Agent
		for range 20 {
			c := memConfig(n, ipA, RoleAuto)
			c.STUNServers, c.NAT = []string{stunAddr.String()}, cache
			c.natCheck = func(ctx context.Context, server string) (natcheck.Class, error) {
				calls.Add(1)
				time.Sleep(time.Second) // virtual time: a measurement takes a while, the others ask meanwhile
				return eimClass, nil
			}
			a, err := New(c)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if err := a.Gather(context.Background()); err != nil {
				t.Fatal(err)
			}
			agents = append(agents, a)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		for _, a := range agents {
			if got := a.Stats().LocalNAT; got != eimClass.String() {
				t.Fatalf("an agent has class %q, want %q", got, eimClass)
			}
		}
		if calls.Load() != 1 || cache.Measurements() != 1 {
			t.Fatalf("%d measurements (%d counted) for 20 agents, want 1", calls.Load(), cache.Measurements())
		}
	})
}

// A class is trusted for Refresh, a failure only briefly; Forget drops
// what is known; a measurer that goes away leaves a waiter to measure.
func TestSyncNATCacheRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &NATCache{Refresh: time.Minute}
		k := natKey{server: "s", local: ipA}
		calls := 0
		ok := func(context.Context) (natcheck.Class, error) { calls++; return eimClass, nil }
		ask := func() (natcheck.Class, error) { return c.class(context.Background(), k, time.Now(), ok) }
		ask()
		ask()
		if calls != 1 {
			t.Fatalf("%d measurements within Refresh, want 1", calls)
		}
		time.Sleep(2 * time.Minute)
		ask()
		if calls != 2 {
			t.Fatalf("%d measurements after Refresh, want 2", calls)
		}
		c.Forget()
		ask()
		if calls != 3 {
			t.Fatalf("%d measurements after Forget, want 3", calls)
		}

		fail := func(context.Context) (natcheck.Class, error) {
			calls++
			return natcheck.Class{}, errors.New("no answer")
		}
		k2 := natKey{server: "down", local: ipA}
		c.class(context.Background(), k2, time.Now(), fail)
		c.class(context.Background(), k2, time.Now(), fail)
		if calls != 4 {
			t.Fatalf("a failure was measured again at once (%d)", calls)
		}
		time.Sleep(natRetry + time.Second)
		c.class(context.Background(), k2, time.Now(), fail)
		if calls != 5 {
			t.Fatalf("a failure was not measured again after %v (%d)", natRetry, calls)
		}

		// The first asker closes mid-measurement: a waiter measures again.
		k3 := natKey{server: "slow", local: ipA}
		ctx, cancel := context.WithCancel(context.Background())
		first := func(ctx context.Context) (natcheck.Class, error) {
			<-ctx.Done()
			return natcheck.Class{}, ctx.Err()
		}
		var wg sync.WaitGroup
		wg.Go(func() { c.class(ctx, k3, time.Now(), first) })
		synctest.Wait()
		var got natcheck.Class
		var err error
		wg.Go(func() { got, err = c.class(context.Background(), k3, time.Now(), ok) })
		synctest.Wait()
		cancel()
		wg.Wait()
		if err != nil || got != eimClass {
			t.Fatalf("the waiter got %v, %v; want a measurement of its own", got, err)
		}
	})
}
