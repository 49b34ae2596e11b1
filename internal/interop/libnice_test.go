package interop

import (
	"context"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
)

// TestLibnice connects icetcp and libnice in both roles and with a role
// conflict, and moves 1 MiB each way.
func TestLibnice(t *testing.T) {
	for _, tc := range []struct {
		name            string
		niceControlling bool
		role            agent.Role
	}{
		{"libnice controlled", false, agent.RoleAuto},
		{"libnice controlling", true, agent.RoleAuto},
		{"both controlling", true, agent.RoleControlling},
		{"both controlled", false, agent.RoleControlled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := StartLibnice(t, Options{Controlling: tc.niceControlling, Debug: testing.Verbose()})
			s := newAgent(t, agent.Config{Role: tc.role})
			conn := s.connect(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.WaitState(ctx, StateConnected); err != nil {
				t.Fatal(err)
			}
			exchange(t, conn, p, 1<<20, 64<<10, 0)
			if p.Failed() {
				t.Errorf("libnice failed after the exchange: %v", p.States())
			}
		})
	}
}

// TestLibniceBulkWrite sends 1 MiB each way with one Write on the icetcp
// side (frames of 65,535 bytes), in both roles.
func TestLibniceBulkWrite(t *testing.T) {
	for _, niceControlling := range []bool{false, true} {
		t.Run(map[bool]string{false: "libnice controlled", true: "libnice controlling"}[niceControlling], func(t *testing.T) {
			p := StartLibnice(t, Options{Controlling: niceControlling})
			s := newAgent(t, agent.Config{})
			conn := s.connect(t, p)
			exchange(t, conn, p, 1<<20, 0, 0)
		})
	}
}
