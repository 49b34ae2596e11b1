package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/icetcp/icetcp/signaling/rendezvous"
)

func TestRegisterStats(t *testing.T) {
	type fakeStats struct {
		Allocations int               `metric:"allocations,gauge" help:"Allocations now."`
		Bytes       uint64            `metric:"relayed_bytes_total,counter" help:"Bytes relayed."`
		Refused     map[string]uint64 `metric:"refusals_total,counter,reason" help:"Refusals."`
		Ignored     string
	}
	st := fakeStats{Allocations: 3, Bytes: 1 << 40, Refused: map[string]uint64{"quota": 2, "auth": 1}}
	reg := prometheus.NewRegistry()
	if err := registerStats(reg, "turn", func() fakeStats { return st }); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP icetcp_turn_allocations Allocations now.
# TYPE icetcp_turn_allocations gauge
icetcp_turn_allocations 3
# HELP icetcp_turn_refusals_total Refusals.
# TYPE icetcp_turn_refusals_total counter
icetcp_turn_refusals_total{reason="auth"} 1
icetcp_turn_refusals_total{reason="quota"} 2
# HELP icetcp_turn_relayed_bytes_total Bytes relayed.
# TYPE icetcp_turn_relayed_bytes_total counter
icetcp_turn_relayed_bytes_total 1.099511627776e+12
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	// The signaling server's Stats are tagged correctly.
	if err := registerStats(prometheus.NewRegistry(), "signal", (&rendezvous.Server{}).Stats); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterStatsRefusesBadTags(t *testing.T) {
	type badKind struct {
		X int `metric:"x,histogram"`
	}
	type badLabel struct {
		X int `metric:"x,counter,reason"`
	}
	type notNumber struct {
		X string `metric:"x,gauge"`
	}
	type none struct{ X int }
	reg := prometheus.NewRegistry()
	for name, err := range map[string]error{
		"kind":       registerStats(reg, "a", func() badKind { return badKind{} }),
		"label":      registerStats(reg, "b", func() badLabel { return badLabel{} }),
		"not number": registerStats(reg, "c", func() notNumber { return notNumber{} }),
		"no tags":    registerStats(reg, "d", func() none { return none{} }),
		"not struct": registerStats(reg, "e", func() int { return 1 }),
	} {
		if err == nil || !strings.HasPrefix(err.Error(), "metrics: ") {
			t.Errorf("%s: %v, want an error", name, err)
		}
	}
}
