package agent

import (
	"bytes"
	"testing"

	ice "github.com/pion/ice/v2"
	"github.com/pion/stun"
)

// Our ICE attributes are pion/ice's, byte for byte, both ways.
func TestICEAttributesMatchPion(t *testing.T) {
	id := [stun.TransactionIDSize]byte{1, 2, 3}
	for _, tc := range []struct {
		ours, pions []stun.Setter
	}{
		{[]stun.Setter{priorityAttr(0x6e0001ff), roleAttr{controlling: true, tiebreaker: 0xdeadbeef01}, useCandidateAttr{}},
			[]stun.Setter{ice.PriorityAttr(0x6e0001ff), ice.AttrControlling(0xdeadbeef01), ice.UseCandidate()}},
		{[]stun.Setter{priorityAttr(1), roleAttr{tiebreaker: 42}},
			[]stun.Setter{ice.PriorityAttr(1), ice.AttrControlled(42)}},
	} {
		build := func(s []stun.Setter) *stun.Message {
			m, err := stun.Build(append([]stun.Setter{stun.NewTransactionIDSetter(id), stun.BindingRequest}, s...)...)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		ours, pions := build(tc.ours), build(tc.pions)
		if !bytes.Equal(ours.Raw, pions.Raw) {
			t.Fatalf("ours %x, pion's %x", ours.Raw, pions.Raw)
		}
		var c ice.AttrControl
		if err := c.GetFrom(ours); err != nil {
			t.Fatal(err)
		}
		r, err := getRole(pions)
		if err != nil || r.controlling != (c.Role == ice.Controlling) || r.tiebreaker != c.Tiebreaker {
			t.Fatalf("role %+v %v, pion read %+v", r, err, c)
		}
		var pp ice.PriorityAttr
		if err := pp.GetFrom(ours); err != nil {
			t.Fatal(err)
		}
		if p, err := getPriority(pions); err != nil || p != uint32(pp) {
			t.Fatalf("priority %d %v, pion read %d", p, err, pp)
		}
	}
	m, _ := stun.Build(stun.BindingRequest, stun.RawAttribute{Type: stun.AttrPriority, Value: []byte{1}})
	if _, err := getPriority(m); err == nil {
		t.Fatal("a 1-byte PRIORITY was read")
	}
}
