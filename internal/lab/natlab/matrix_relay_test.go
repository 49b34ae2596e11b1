package natlab

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRelay(t *testing.T) {
	for in, want := range map[string]Relay{"": RelayEmbedded, "embedded": RelayEmbedded, "coturn": RelayCoturn, "off": RelayOff} {
		if got, err := ParseRelay(in); err != nil || got != want {
			t.Errorf("ParseRelay(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseRelay("pion"); err == nil || !strings.Contains(err.Error(), `"pion"`) {
		t.Errorf("ParseRelay(pion): %v, want an error naming it", err)
	}
	if _, err := RunMatrix(t.Context(), MatrixConfig{Binary: "/bin/true", Relay: "nope"}); err == nil {
		t.Error("RunMatrix accepted an unknown relay")
	}
}

// TestConnectArgs: every connect gets the relay on the address its
// firewall lets through, and the password only in the environment.
func TestConnectArgs(t *testing.T) {
	for _, tc := range []struct {
		relay   Relay
		profile string
		want    []string
		env     bool
	}{
		{RelayEmbedded, "symmetric", []string{"--signal", "ws://198.51.100.10:8080", "--stun", "198.51.100.10:3478",
			"--turn", "turn:198.51.100.10:3478?transport=tcp", "--turn-user", turnUser}, true},
		{RelayCoturn, "tcp443-only", []string{"--signal", "ws://198.51.100.12:443", "--stun", "198.51.100.13:443",
			"--turn", "turn:198.51.100.13:443?transport=tcp", "--turn-user", turnUser}, true},
		{RelayOff, "preserve-rst", []string{"--signal", "ws://198.51.100.10:8080", "--stun", "198.51.100.10:3478"}, false},
	} {
		s := &servers{relay: tc.relay, turnPass: "pw"}
		args, env := s.connectArgs(Host{Profile: tc.profile})
		if !slices.Equal(args, tc.want) {
			t.Errorf("%s behind %s: args %q, want %q", tc.relay, tc.profile, args, tc.want)
		}
		if got := slices.Contains(env, "ICETCP_TURN_PASS=pw"); got != tc.env || strings.Contains(strings.Join(args, " "), "pw") {
			t.Errorf("%s: env %q, args %q: the password belongs in the environment only", tc.relay, env, args)
		}
	}
}

func TestWantTwin(t *testing.T) {
	relayed := TrialResult{OK: true, Path: "relay passive←active relay←srflx"}
	direct := TrialResult{OK: true, Path: "so host↔srflx"}
	failed := TrialResult{Path: "relay passive←active relay←srflx"}
	on := MatrixConfig{Counterfactual: true}
	capped := MatrixConfig{Counterfactual: true, CounterfactualTrials: 2}
	for _, tc := range []struct {
		mc    MatrixConfig
		tr    TrialResult
		twins int
		want  bool
	}{
		{on, relayed, 0, true},
		{on, relayed, 19, true},
		{on, direct, 0, false},
		{on, failed, 0, false},
		{MatrixConfig{}, relayed, 0, false},
		{capped, relayed, 1, true},
		{capped, relayed, 2, false},
	} {
		if got := tc.mc.wantTwin(tc.tr, tc.twins); got != tc.want {
			t.Errorf("wantTwin(%+v, %+v, %d) = %v", tc.mc, tc.tr, tc.twins, got)
		}
	}
}

const (
	natEIM  = "v1 mapping=eim port=preserve alloc=preserve syn=rst"
	natAPDM = "v1 mapping=apdm port=remap alloc=random syn=rst"
)

func TestNATClasses(t *testing.T) {
	ev := func(local, remote string) *Event {
		return &Event{Event: "selected", NATLocal: local, NATRemote: remote}
	}
	for _, tc := range []struct {
		sel  [2]*Event
		a, b string
	}{
		{[2]*Event{ev(natEIM, natAPDM), ev(natAPDM, natEIM)}, natEIM, natAPDM},
		{[2]*Event{ev("", natAPDM), ev(natAPDM, natEIM)}, natEIM, natAPDM}, // A's own check not done: B heard it
		{[2]*Event{ev(natEIM, ""), nil}, natEIM, ""},
		{[2]*Event{nil, nil}, "", ""},
	} {
		if a, b := natClasses(tc.sel); a != tc.a || b != tc.b {
			t.Errorf("natClasses = %q, %q; want %q, %q", a, b, tc.a, tc.b)
		}
	}
	if got := shortNAT(natAPDM); got != "apdm rst" {
		t.Errorf("shortNAT = %q", got)
	}
	if got := shortNATs(map[string]int{natEIM + " | " + natAPDM: 3, "- | " + natAPDM: 1}); got != "eim rst | apdm rst (+1)" {
		t.Errorf("shortNATs = %q", got)
	}
}

// TestAggregateTwins: the counterfactual is summarised beside the
// measured times, in RTTs, with the pairs the fast fallback won.
func TestAggregateTwins(t *testing.T) {
	const relay = "relay passive←active relay←srflx"
	var trials []TrialResult
	for i, ms := range []float64{480, 500, 520, 1100} {
		trials = append(trials, TrialResult{Trial: i, OK: true, Path: relay, ConnectMs: ms, NATA: natAPDM, NATB: natAPDM,
			AwaitDirect: &TrialResult{Trial: i, OK: true, Path: relay, ConnectMs: 10100 + ms}})
	}
	trials[3].AwaitDirect.ConnectMs = 900 // a twin that happened to be faster
	trials = append(trials,
		TrialResult{Trial: 4, OK: true, Path: relay, ConnectMs: 490,
			AwaitDirect: &TrialResult{Trial: 4, Reason: "timeout"}},
		TrialResult{Trial: 5, OK: true, Path: "so host↔srflx", ConnectMs: 200})
	c := aggregate("symmetric", "symmetric", 40*time.Millisecond, trials)
	aw := c.AwaitDirect
	if aw == nil {
		t.Fatal("no AwaitDirect summary")
	}
	if aw.Trials != 5 || aw.Successes != 4 || aw.Pairs != 4 || aw.Faster != 3 || aw.Failures["timeout"] != 1 || aw.Paths[relay] != 4 {
		t.Errorf("await %+v", *aw)
	}
	// Twins: 900 10580 10600 10620 → median (2nd) 10580, p95 (4th) 10620.
	if aw.MedianMs != 10580 || aw.P95Ms != 10620 || aw.MedianRTTs != 264.5 || aw.P95RTTs != 265.5 {
		t.Errorf("await times %v %v %v %v", aw.MedianMs, aw.P95Ms, aw.MedianRTTs, aw.P95RTTs)
	}
	if c.NATs[natAPDM+" | "+natAPDM] != 4 {
		t.Errorf("NATs %v", c.NATs)
	}
	if none := aggregate("a", "b", time.Second, trials[5:]); none.AwaitDirect != nil {
		t.Errorf("a cell without twins has an AwaitDirect summary: %+v", none.AwaitDirect)
	}

	m := &MatrixResult{Rows: []string{"symmetric"}, Profiles: []string{"symmetric", "public"}, Trials: 6, Relay: RelayEmbedded,
		Cells: []CellResult{c}}
	var buf bytes.Buffer
	if err := m.Table(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	for _, want := range []string{"await median RTTs", "4/5", "264.5", "265.5", "3/4", "apdm rst | apdm rst", "await-direct: timeout×1", "symmetric  6/6 relay"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Relay":"embedded"`, `"AwaitDirect":{"Trials":5`, `"NATA":"v1 mapping=apdm`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("JSON lacks %s", want)
		}
	}
}

func TestCellAxes(t *testing.T) {
	rows, cols := cellAxes([]Cell{{A: "symmetric", B: "symmetric"}, {A: "tcp443-only", B: "preserve-drop"},
		{A: "symmetric", B: "preserve-drop"}, {A: "preserve-rst", SameNAT: true}})
	if !slices.Equal(rows, []string{"symmetric", "tcp443-only", "preserve-rst"}) || !slices.Equal(cols, []string{"symmetric", "preserve-drop"}) {
		t.Errorf("rows %q cols %q", rows, cols)
	}
}

// TestRelayUpgradeColumns: a session that started on the relay and moved
// gives the trial its time to the first byte (selection and handshake,
// the slower side), its time to the move (from A's stderr's arrival
// times) and what the relay carried after the direct pair validated
// (the larger side's); the table's relay columns show them.
func TestRelayUpgradeColumns(t *testing.T) {
	line := func(e Event) string {
		b, _ := json.Marshal(e)
		return string(b) + "\n"
	}
	stderr := func(local, remote string, ms float64, afterDirect int64) (string, []time.Duration) {
		return line(Event{Event: "selected", Local: candRelayActive, Remote: candRelayB, Path: "relay", ConnectMs: ms}) +
				"icetcp-agent INFO: a log line\n" +
				line(Event{Event: "secured", HandshakeMs: 40}) +
				line(Event{Event: "path", Path: "direct", Local: local, Remote: remote}) +
				line(Event{Event: "done", Paths: []PathBytes{{Path: "relay", Bytes: 9 << 20, AfterDirect: afterDirect}, {Path: "direct", Bytes: 1 << 20}}}),
			[]time.Duration{100 * time.Millisecond, 110 * time.Millisecond, 150 * time.Millisecond, 1600 * time.Millisecond, 2 * time.Second}
	}
	var sides [2]side
	for i, tc := range []struct {
		local, remote string
		ms            float64
		after         int64
	}{{candSOSrflx, candSOSrflxB, 60, 1234}, {candSOSrflxB, candSOSrflx, 90, 5000}} {
		ev, at := stderr(tc.local, tc.remote, tc.ms, tc.after)
		sides[i] = canned(t, ev, []string{"aa", "bb"}[i], []string{"bb", "aa"}[i], nil)
		sides[i].stderr.at = at
	}
	tr := evaluateTrial(sides)
	if !tr.OK || tr.MoveMs != 1500 || tr.FirstByteMs != 130 || tr.AfterDirect != 5000 {
		t.Fatalf("trial: ok %v (%s), move %v ms, first byte %v ms, after direct %d; want 1500, 130, 5000", tr.OK, tr.Reason, tr.MoveMs, tr.FirstByteMs, tr.AfterDirect)
	}
	tr.A, tr.B = "symmetric", "preserve-rst"
	relayed := TrialResult{A: "symmetric", B: "preserve-rst", OK: true, Path: ClassifyPath(candRelayActive, candRelayB), FirstByteMs: 210, ConnectMs: 150}
	c := aggregate("symmetric", "preserve-rst", 40*time.Millisecond, []TrialResult{tr, relayed, relayed})
	if c.RelayStarts != 3 || c.Upgraded != 1 || c.MedianFirstByteMs != 210 || c.MedianMoveMs != 1500 || c.MaxAfterDirect != 5000 {
		t.Errorf("cell: %+v", c)
	}
	var b bytes.Buffer
	(&MatrixResult{Profiles: []string{"preserve-rst"}, Rows: []string{"symmetric"}, Cells: []CellResult{c}}).Table(&b)
	for _, want := range []string{"relay 1st byte RTTs", "to direct ms", "relay after direct", "5.2", "1500 (1/3)", "5000 B"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	// Without the agents' report, the cell says it does not know.
	tr.AfterDirect = -1
	if c := aggregate("symmetric", "preserve-rst", 40*time.Millisecond, []TrialResult{tr}); c.MaxAfterDirect != -1 || !strings.Contains(relayColumns(c), "?") {
		t.Errorf("unreported after-direct bytes: %d, %q", c.MaxAfterDirect, relayColumns(c))
	}
}
