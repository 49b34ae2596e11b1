package agent

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pion/stun"
)

// The ICE attributes of a check (RFC 8445 §16.1) on pion/stun. pion/ice/v2
// has them too, but its package links its test helpers (and so package
// testing) into any binary that imports it, and these are four fixed-size
// fields.

// priorityAttr is PRIORITY: the priority a peer-reflexive candidate
// learned from this check gets (§7.1.1).
type priorityAttr uint32

func (p priorityAttr) AddTo(m *stun.Message) error {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(p))
	m.Add(stun.AttrPriority, v)
	return nil
}

// roleAttr is ICE-CONTROLLING or ICE-CONTROLLED with the tie-breaker
// (§7.1.3).
type roleAttr struct {
	controlling bool
	tiebreaker  uint64
}

func (r roleAttr) AddTo(m *stun.Message) error {
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, r.tiebreaker)
	t := stun.AttrICEControlled
	if r.controlling {
		t = stun.AttrICEControlling
	}
	m.Add(t, v)
	return nil
}

// useCandidateAttr is USE-CANDIDATE: the controlling agent nominates the
// pair (§7.1.2).
type useCandidateAttr struct{}

func (useCandidateAttr) AddTo(m *stun.Message) error {
	m.Add(stun.AttrUseCandidate, nil)
	return nil
}

var errAttrSize = errors.New("agent: STUN attribute of the wrong size")

// getRole reads ICE-CONTROLLING or ICE-CONTROLLED.
func getRole(m *stun.Message) (roleAttr, error) {
	for _, t := range []stun.AttrType{stun.AttrICEControlling, stun.AttrICEControlled} {
		v, err := m.Get(t)
		if err != nil {
			continue
		}
		if len(v) != 8 {
			return roleAttr{}, fmt.Errorf("%w: %v is %d bytes", errAttrSize, t, len(v))
		}
		return roleAttr{controlling: t == stun.AttrICEControlling, tiebreaker: binary.BigEndian.Uint64(v)}, nil
	}
	return roleAttr{}, stun.ErrAttributeNotFound
}

// getPriority reads PRIORITY.
func getPriority(m *stun.Message) (uint32, error) {
	v, err := m.Get(stun.AttrPriority)
	if err != nil {
		return 0, err
	}
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: PRIORITY is %d bytes", errAttrSize, len(v))
	}
	return binary.BigEndian.Uint32(v), nil
}
