package interop

import (
	"context"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
)

// peerKind is a third-party agent the data tests run against.
type peerKind struct {
	name  string
	start func(testing.TB, Options) *Peer
	// writeSize and window shape icetcp's writes to what the agent can
	// take: pion reads frames of at most 8,192 bytes (finding 2,
	// TestPionLargeFrames) and drops what its application has not read
	// beyond 1 MB.
	writeSize, window int
}

var dataPeers = []peerKind{
	{"libnice", StartLibnice, 64 << 10, 0},
	{"pion", StartPion, PionWriteSize, 256 << 10},
}

// TestRolesAndData connects icetcp and each agent in both roles and with
// role conflicts (both controlling, both controlled: RFC 8445 §7.3.1.1
// repairs them with 487), and moves 1 MiB each way, compared by SHA-256.
func TestRolesAndData(t *testing.T) {
	for _, k := range dataPeers {
		for _, tc := range []struct {
			name            string
			peerControlling bool
			role            agent.Role
		}{
			{"peer controlled", false, agent.RoleAuto},
			{"peer controlling", true, agent.RoleAuto},
			{"both controlling", true, agent.RoleControlling},
			{"both controlled", false, agent.RoleControlled},
		} {
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				p := k.start(t, Options{Controlling: tc.peerControlling})
				s := newAgent(t, agent.Config{Role: tc.role})
				conn := s.connect(t, p)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := p.WaitState(ctx, StateConnected); err != nil {
					t.Fatal(err)
				}
				exchange(t, conn, p, 1<<20, k.writeSize, k.window)
				if p.Failed() {
					t.Errorf("%s failed after the exchange: %v", k.name, p.States())
				}
			})
		}
	}
}

// TestLibniceBulkWrite sends 1 MiB each way with one Write on the icetcp
// side (frames of 65,535 bytes), in both roles. (pion's bulk write is
// TestPionLargeFrames.)
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
