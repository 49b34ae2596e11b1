package interop

import (
	"context"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
)

// TestPion connects icetcp and pion/ice v2 in both roles and with role
// conflicts, and moves 1 MiB each way in writes pion can read (finding 2,
// frames above 8,192 bytes, is TestPionLargeFrames).
func TestPion(t *testing.T) {
	for _, tc := range []struct {
		name            string
		pionControlling bool
		role            agent.Role
	}{
		{"pion controlled", false, agent.RoleAuto},
		{"pion controlling", true, agent.RoleAuto},
		{"both controlling", true, agent.RoleControlling},
		{"both controlled", false, agent.RoleControlled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := StartPion(t, Options{Controlling: tc.pionControlling})
			s := newAgent(t, agent.Config{Role: tc.role})
			conn := s.connect(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.WaitState(ctx, StateConnected); err != nil {
				t.Fatal(err)
			}
			exchange(t, conn, p, 1<<20, PionWriteSize, 256<<10)
		})
	}
}
