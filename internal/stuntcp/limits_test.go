package stuntcp

import (
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/logging"
)

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":              "192.0.2.7/32",
		"::ffff:192.0.2.7":       "192.0.2.7/32",
		"2001:db8:1:2:3:4:5:6":   "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::abc": "2001:db8:1:2::/64",
	} {
		if got := sourceKey(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("sourceKey(%s) = %s, want %s", in, got, want)
		}
	}
}

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

// TestRefusalLogPace: the first refusal of a reason is logged at once, the
// rest are summed into one line per window, reasons are independent, and
// Close reports what is still summed.
func TestRefusalLogPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf lockedBuffer
		lf := logging.NewDefaultLoggerFactory()
		lf.Writer = &buf
		lf.DefaultLogLevel = logging.LogLevelWarn
		r := newRefusalLog(lf.NewLogger("test"), 10*time.Second)
		lines := func() []string {
			s := strings.TrimSpace(buf.String())
			if s == "" {
				return nil
			}
			return strings.Split(s, "\n")
		}
		for i := range 1000 {
			r.note(reasonPerIP, "conn "+string(rune('a'+i%26)))
		}
		r.note(reasonMaxConns, "other")
		if n := len(lines()); n != 2 {
			t.Fatalf("%d lines after a burst, want 2 (one per reason):\n%s", n, buf.String())
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		got := lines()
		if len(got) != 3 || !strings.Contains(got[2], "(per-ip): 999 more in the last 10s") {
			t.Fatalf("after the window:\n%s", buf.String())
		}
		// A continuing flood stays summed: one line per window.
		for range 5 {
			r.note(reasonPerIP, "again")
		}
		if len(lines()) != 3 {
			t.Fatalf("refusals right after a summary were logged singly:\n%s", buf.String())
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := lines(); len(got) != 4 || !strings.Contains(got[3], "5 more") {
			t.Fatalf("second window:\n%s", buf.String())
		}
		// A quiet window ends the summing: the next refusal is logged at once.
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r.note(reasonPerIP, "late")
		r.note(reasonPerIP, "later")
		if got := lines(); len(got) != 5 || !strings.Contains(got[4], "late") {
			t.Fatalf("after a quiet window:\n%s", buf.String())
		}
		r.close()
		if got := lines(); len(got) != 6 || !strings.Contains(got[5], "1 more before close") {
			t.Fatalf("close:\n%s", buf.String())
		}
		r.note(reasonPerIP, "after close")
		if len(lines()) != 6 {
			t.Fatal("logged after close")
		}
	})
}
