package interop

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
)

// TestPionLargeFrames is finding 2: icetcp writes RFC 4571 frames of up to
// 65,535 bytes, pion/ice v2 reads frames into an 8,192-byte buffer and
// drops the connection on a larger one ("Failed to read streaming packet:
// short buffer"). One 64 KiB Write must reach pion whole, in both roles
// (pion reads passive connections in its TCPMux and active ones in its own
// dialer; both have the limit).
func TestPionLargeFrames(t *testing.T) {
	for _, pionControlling := range []bool{false, true} {
		t.Run(fmt.Sprintf("pion controlling=%v", pionControlling), func(t *testing.T) {
			p := StartPion(t, Options{Controlling: pionControlling, Debug: true}) // pion logs the drop at info level
			s := newAgent(t, agent.Config{})
			conn := s.connect(t, p)
			want := randomBytes(t, 64<<10)
			if _, err := conn.Write(want); err != nil {
				t.Fatalf("icetcp Write: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := p.WaitReceived(ctx, len(want))
			if err != nil {
				t.Fatalf("pion received %d of %d bytes written in one Write: %v (pion log: %s)", len(got), len(want), err, grep(p.Log(), "short buffer"))
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("pion received %s, icetcp sent %s", sum(got), sum(want))
			}
		})
	}
}

// TestTriggeredCheckNotPaced is finding 3: against a controlling pion,
// which nominates as soon as a Binding request arrives on a pair it has
// validated, icetcp's triggered check (RFC 8445 §7.3.1.4, the answer to
// pion's check on our passive candidate) waited for the next pacing tick
// instead of leaving at once: 51 ms connects with the default 50 ms Ta.
//
// The measure is in pacing intervals, not milliseconds: Ta is 3 s here and
// pion's own tick (which would nominate without our check) is 60 s, so
// icetcp's selection comes after less than one Ta only if the triggered
// check did not wait for pacing. pion has a passive candidate (TCPMux), so
// icetcp's first ordinary check (active → pion passive) takes the first
// pacing slot before pion's check arrives.
func TestTriggeredCheckNotPaced(t *testing.T) {
	const pacing = 1500 * time.Millisecond
	p := StartPion(t, Options{Controlling: true, CheckInterval: time.Minute, Debug: true})
	s := newAgent(t, agent.Config{Role: agent.RoleControlled, Pacing: pacing, ConnectTimeout: time.Minute})
	conn := s.connect(t, p)
	intervals := float64(conn.ConnectTime()) / float64(pacing)
	t.Logf("connected after %.2f pacing intervals (%v); selected %s -> %s", intervals, conn.ConnectTime(), conn.Local().Marshal(), conn.Remote().Marshal())
	if intervals >= 1 {
		t.Errorf("icetcp selected after %.2f pacing intervals: its triggered check waited for the pacing timer (pion nominates when our check arrives)", intervals)
	}
}

// grep returns the lines of log that contain word.
func grep(log, word string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, word) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "; ")
}
