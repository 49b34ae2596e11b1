package relay

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestNonce(t *testing.T) {
	k := newNonceKeeper(10 * time.Minute)
	t0 := time.Unix(1_800_000_000, 123_000_000)
	a := nonceTuple{netip.MustParseAddrPort("198.51.100.1:40000"), netip.MustParseAddrPort("203.0.113.5:3478")}
	b := nonceTuple{netip.MustParseAddrPort("198.51.100.1:40001"), a.server}
	n := k.issue(a, t0)
	if len(n) != nonceLen || !strings.HasPrefix(n, noncePrefix) {
		t.Fatalf("nonce %q: want %d bytes starting %q", n, nonceLen, noncePrefix)
	}
	if k.issue(b, t0) == n {
		t.Fatal("two connections got the same nonce")
	}
	for name, tc := range map[string]struct {
		nonce string
		tuple nonceTuple
		at    time.Time
		ok    bool
	}{
		"fresh":                        {n, a, t0, true},
		"at the end of its lifetime":   {n, a, t0.Add(10 * time.Minute), true},
		"stale":                        {n, a, t0.Add(10*time.Minute + time.Millisecond), false},
		"on another connection":        {n, b, t0, false},
		"from another server":          {newNonceKeeper(time.Hour).issue(a, t0), a, t0, false},
		"issued in the future":         {n, a, t0.Add(-2 * time.Second), false},
		"one character changed":        {n[:len(n)-1] + string("AB"[n[len(n)-1]&1]), a, t0, false},
		"pion's form":                  {"2r0bqk4xjv1c9wplz3mh", a, t0, false},
		"empty":                        {"", a, t0, false},
		"a line break in the encoding": {n[:20] + "\n" + n[21:], a, t0, false},
	} {
		err := k.check(tc.nonce, tc.tuple, tc.at)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errBadNonce)) {
			t.Errorf("%s: check = %v, want ok %v", name, err, tc.ok)
		}
	}
}

// FuzzNonce: decodeNonce takes any string without panicking and accepts
// only the canonical form; whatever decodes, a check with a fresh key
// refuses, and an issued nonce checks out.
func FuzzNonce(f *testing.F) {
	k := newNonceKeeper(time.Hour)
	tup := nonceTuple{netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("192.0.2.2:3478")}
	f.Add(k.issue(tup, time.Unix(1_800_000_000, 0)), int64(1_800_000_000))
	f.Add("icetcp1-////////////////////////////////", int64(0))
	f.Add("", int64(-1))
	f.Fuzz(func(t *testing.T, nonce string, unix int64) {
		issued, tag, err := decodeNonce(nonce)
		if err == nil {
			if len(tag) != nonceTagLen || len(nonce) != nonceLen {
				t.Fatalf("decoded %q: tag %d bytes", nonce, len(tag))
			}
			if again, _, err := decodeNonce(k.issue(tup, issued)); err != nil || !again.Equal(issued) {
				t.Fatalf("time %v of %q does not survive issue and decode: %v %v", issued, nonce, again, err)
			}
		}
		if k.check(nonce, tup, time.Unix(unix, 0)) == nil && nonce != k.issue(tup, issued) {
			t.Fatalf("%q checks out without being issued", nonce)
		}
		at := time.Unix(int64(uint64(unix)%(1<<40)), 0) // after 1970, as a clock is
		if err := k.check(k.issue(tup, at), tup, at); err != nil {
			t.Fatalf("a fresh nonce for %v: %v", at, err)
		}
	})
}
