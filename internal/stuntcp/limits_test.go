package stuntcp

import (
	"net/netip"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")
	steps := []struct {
		key  netip.Prefix
		at   time.Duration
		want bool
	}{
		{a, 0, true}, {a, 0, true}, {a, 0, true}, // burst 3
		{a, 0, false},                      // the fourth at once is refused
		{b, 0, true},                       // another source is unaffected
		{a, 999 * time.Millisecond, false}, // not a whole interval yet
		{a, time.Second, true},             // one token back per second
		{a, time.Second, false},
		{a, 10 * time.Second, true}, {a, 10 * time.Second, true}, {a, 10 * time.Second, true}, // full again, no more than burst
		{a, 10 * time.Second, false},
	}
	r := newRateLimiter(time.Second, 3, 100)
	for i, s := range steps {
		if got := r.allow(s.key, t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d (%s at %v): allow = %v, want %v", i, s.key, s.at, got, s.want)
		}
	}
}

func TestRateLimiterTableBound(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newRateLimiter(time.Second, 1, 2)
	k := func(i byte) netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, i}), 32) }
	if !r.allow(k(1), t0) || !r.allow(k(2), t0) {
		t.Fatal("first two sources refused")
	}
	if r.allow(k(3), t0) {
		t.Fatal("a third source fits a table of two while both owe tokens")
	}
	// Once the first two have paid back, they are pruned and make room.
	if !r.allow(k(3), t0.Add(2*time.Second)) {
		t.Fatal("no room after pruning")
	}
}
