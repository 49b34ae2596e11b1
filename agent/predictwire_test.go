package agent

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/icetcp/icetcp/candidate"
)

func TestPredictTag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want predictTag
	}{
		{"n1.1.8", predictTag{round: 1, index: 1, count: 8}},
		{"r2.8.8", predictTag{reply: true, round: 2, index: 8, count: 8}},
		{"n99.32.32", predictTag{round: 99, index: 32, count: 32}},
	} {
		got, err := parsePredictTag(tc.in)
		if err != nil || got != tc.want || got.String() != tc.in {
			t.Errorf("parsePredictTag(%q) = %+v, %v (String %q)", tc.in, got, err, got.String())
		}
	}
	for _, bad := range []string{"", "n1.1", "x1.1.8", "n0.1.8", "n1.0.8", "n1.9.8", "n1.1.33", "n100.1.8",
		"n01.1.8", "n1.1.8.1", "n+1.1.8", "n1..8", "N1.1.8", "n1.1.8 ", "n-1.1.8", "n1.1.８"} {
		if got, err := parsePredictTag(bad); !errors.Is(err, errBadPredictTag) {
			t.Errorf("parsePredictTag(%q) = %+v, %v; want an error", bad, got, err)
		}
	}
}

func TestPredictedTag(t *testing.T) {
	so := candidate.New(candidate.ServerReflexive, candidate.SO, netip.MustParseAddrPort("203.0.113.1:30001"),
		netip.MustParseAddrPort("10.0.1.2:41000"), netip.MustParseAddr("198.51.100.10"), 8191)
	with := func(c candidate.Candidate, ext ...candidate.Extension) candidate.Candidate {
		c.Ext = ext
		return c
	}
	tag := candidate.Extension{Key: extPredict, Value: "n1.2.8"}
	// Through the SDP grammar and back: a peer's line carries it.
	c, err := candidate.Parse(with(so, candidate.Extension{Key: "generation", Value: "0"}, tag).Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, err := predictedTag(c); !ok || err != nil || got != (predictTag{round: 1, index: 2, count: 8}) {
		t.Fatalf("predictedTag = %+v %v %v", got, ok, err)
	}
	if _, ok, err := predictedTag(so); ok || err != nil {
		t.Fatalf("a plain candidate: %v %v", ok, err)
	}
	for name, bad := range map[string]candidate.Candidate{
		"twice":   with(so, tag, tag),
		"passive": with(candidate.New(candidate.ServerReflexive, candidate.Passive, so.Addr, so.Related, netip.Addr{}, 1), tag),
		"host":    with(candidate.New(candidate.Host, candidate.SO, so.Addr, netip.AddrPort{}, netip.Addr{}, 1), tag),
		"value":   with(so, candidate.Extension{Key: extPredict, Value: "n1.9.8"}),
	} {
		if _, ok, err := predictedTag(bad); !ok || !errors.Is(err, errBadPredictTag) {
			t.Errorf("%s: ok %v err %v", name, ok, err)
		}
	}
}

// FuzzPredictTag: any value either parses to a tag that writes back to
// itself, or is refused with errBadPredictTag; never a panic.
func FuzzPredictTag(f *testing.F) {
	for _, s := range []string{"n1.1.8", "r2.3.4", "n99.32.32", "", "n0.0.0", "r1.2", "x", strings.Repeat("9", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag, err := parsePredictTag(s)
		if err != nil {
			if !errors.Is(err, errBadPredictTag) {
				t.Fatalf("%q: error %v does not wrap errBadPredictTag", s, err)
			}
			return
		}
		if tag.String() != s {
			t.Fatalf("%q parsed to %+v, which writes %q", s, tag, tag.String())
		}
		if tag.round < 1 || tag.round > maxPredictRound || tag.index < 1 || tag.index > tag.count || tag.count > maxPredictWindow {
			t.Fatalf("%q: out of bounds %+v", s, tag)
		}
	})
}
