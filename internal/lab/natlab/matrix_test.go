package natlab

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	candSOSrflx   = "candidate:1 1 TCP 1685987071 203.0.113.1 41234 typ srflx raddr 10.0.1.2 rport 41234 tcptype so"
	candSOSrflxB  = "candidate:2 1 TCP 1685987071 203.0.113.2 45000 typ srflx raddr 10.0.2.2 rport 45000 tcptype so"
	candActive    = "a=candidate:3 1 TCP 2128609279 10.0.1.2 9 typ host tcptype active"
	candPassive   = "candidate:4 1 TCP 1685987071 203.0.113.2 45001 typ srflx raddr 10.0.2.2 rport 45001 tcptype passive generation 0"
	candRelay     = "candidate:5 1 TCP 16777215 198.51.100.10 49200 typ relay raddr 203.0.113.1 rport 40000 tcptype passive"
	candHostSO    = "candidate:6 1 TCP 1518280447 10.0.1.2 41234 typ host tcptype so"
	candHostSOB   = "candidate:7 1 TCP 1518280447 10.0.1.3 41300 typ host tcptype so"
	candNoTCPType = "candidate:8 1 TCP 1 10.0.1.2 41234 typ host"

	candActiveSrflx = "candidate:9 1 TCP 1235222527 203.0.113.2 9 typ srflx raddr 10.0.2.2 rport 9 tcptype active"
	candRelayActive = "candidate:10 1 TCP 14680063 198.51.100.10 9 typ relay raddr 203.0.113.1 rport 47925 tcptype active"
	candRelayB      = "candidate:11 1 TCP 10485759 198.51.100.10 49809 typ relay raddr 203.0.113.2 rport 40001 tcptype passive"
)

func TestClassifyPath(t *testing.T) {
	for _, tc := range []struct{ local, remote, want string }{
		{candSOSrflx, candSOSrflxB, "so srflx↔srflx"},
		{candHostSO, candHostSOB, "so host↔host"},
		{candActive, candPassive, "active→passive host→srflx"},
		{candPassive, candActive, "passive←active srflx←host"},
		{candRelay, candActiveSrflx, "relay passive←active relay←srflx"},
		{candActive, candRelay, "relay active→passive host→relay"},
		{candRelayActive, candRelayB, "relay active→passive relay→relay"},
		{"garbage", candPassive, "unknown"},
		{candNoTCPType, candHostSO, "/so host↔host"},
	} {
		if got := ClassifyPath(tc.local, tc.remote); got != tc.want {
			t.Errorf("ClassifyPath(%q, %q) = %q, want %q", tc.local, tc.remote, got, tc.want)
		}
	}
}

func TestParseEvents(t *testing.T) {
	stderr := "2026/01/01 log line\n" +
		`{"event":"gathered","n":3}` + "\n" +
		`{"event":"selected","local":"` + candSOSrflx + `","remote":"` + candSOSrflxB + `","path":"direct","connect_ms":123.5,"attempts":2}` + "\n" +
		`{"broken` + "\n" +
		`{"event":"failed","reason":"all pairs failed"}`
	ev := ParseEvents([]byte(stderr))
	if len(ev) != 3 || ev[1].Event != "selected" || ev[1].ConnectMs != 123.5 || ev[1].Path != "direct" || ev[1].Attempts != 2 || ev[2].Reason != "all pairs failed" {
		t.Fatalf("ParseEvents = %+v", ev)
	}
}

func canned(t *testing.T, events string, sent, got string, err error) side {
	t.Helper()
	s := side{sent: []byte(sent), err: err}
	s.stderr.WriteString(events)
	s.stdout.WriteString(got)
	return s
}

func selected(local, remote string, ms int) string { return selectedN(local, remote, ms, 0) }

func selectedN(local, remote string, ms, attempts int) string {
	b, _ := json.Marshal(Event{Event: "selected", Local: local, Remote: remote, Path: "direct", ConnectMs: float64(ms), Attempts: attempts})
	return string(b) + "\n"
}

func TestEvaluateTrial(t *testing.T) {
	selA := selected(candSOSrflx, candSOSrflxB, 80)
	selB := selected(candSOSrflxB, candSOSrflx, 95)
	selectedA, selectedB := selA, selB
	exit1 := errors.New("exit status 1")
	for _, tc := range []struct {
		name   string
		a, b   side
		ok     bool
		reason string
	}{
		{"success", canned(t, selA, "aa", "bb", nil), canned(t, selB, "bb", "aa", nil), true, ""},
		{"short payload", canned(t, selA, "aa", "b", nil), canned(t, selB, "bb", "aa", nil), false, "payload B→A corrupted or short"},
		{"failed event", canned(t, `{"event":"failed","reason":"no candidate pairs succeeded"}`, "aa", "", exit1),
			canned(t, "", "bb", "", exit1), false, "A failed: no candidate pairs succeeded"},
		{"no selected", canned(t, selA, "aa", "", nil), canned(t, "panic: boom\n", "bb", "", exit1), false, "no selected event from B (exit status 1)"},
		{"exit error", canned(t, selA, "aa", "bb", nil), canned(t, selB, "bb", "aa", exit1), false, "B: exit status 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := evaluateTrial([2]side{tc.a, tc.b})
			if tr.OK != tc.ok || tr.Reason != tc.reason {
				t.Errorf("got ok=%v reason=%q, want ok=%v reason=%q", tr.OK, tr.Reason, tc.ok, tc.reason)
			}
			if tc.ok && (tr.Path != "so srflx↔srflx" || tr.ConnectMs != 95) {
				t.Errorf("path %q connect %v, want so srflx↔srflx and the slower side's 95", tr.Path, tr.ConnectMs)
			}
		})
	}
	// attempts: the larger side's, only for tcp-so; absent stays 0.
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{selectedN(candSOSrflx, candSOSrflxB, 80, 1), selectedN(candSOSrflxB, candSOSrflx, 90, 2), 2},
		{selectedN(candSOSrflx, candSOSrflxB, 80, 1), selected(candSOSrflxB, candSOSrflx, 90), 1},
		{selectedA, selectedB, 0},
		{selectedN(candActive, candPassive, 80, 3), selectedN(candPassive, candActive, 80, 3), 0},
	} {
		tr := evaluateTrial([2]side{canned(t, tc.a, "aa", "bb", nil), canned(t, tc.b, "bb", "aa", nil)})
		if !tr.OK || tr.Attempts != tc.want {
			t.Errorf("attempts %d (ok %v %s), want %d", tr.Attempts, tr.OK, tr.Reason, tc.want)
		}
	}
	// A session that started on the relay and moved: the trial's path is
	// where it ended, its attempts the direct pair's, its first path kept.
	moved := func(local, remote string, attempts int) string {
		b, _ := json.Marshal(Event{Event: "path", Path: "direct", Local: local, Remote: remote, Attempts: attempts})
		return selected(candRelayActive, candRelayB, 60) + string(b) + "\n"
	}
	tr := evaluateTrial([2]side{canned(t, moved(candSOSrflx, candSOSrflxB, 1), "aa", "bb", nil),
		canned(t, moved(candSOSrflxB, candSOSrflx, 2), "bb", "aa", nil)})
	if !tr.OK || tr.Path != "so srflx↔srflx" || tr.FirstPath != ClassifyPath(candRelayActive, candRelayB) || tr.Attempts != 2 {
		t.Errorf("moved session: path %q first %q attempts %d (ok %v %s)", tr.Path, tr.FirstPath, tr.Attempts, tr.OK, tr.Reason)
	}
	timedOut := canned(t, "", "aa", "", exit1)
	timedOut.timedOut = true
	if tr := evaluateTrial([2]side{timedOut, canned(t, "", "bb", "", exit1)}); tr.Reason != "timeout" {
		t.Errorf("timeout classified as %q", tr.Reason)
	}
}

func TestAggregateAndTable(t *testing.T) {
	var trials []TrialResult
	for i, ms := range []float64{100, 120, 80, 300, 110, 90, 105, 95, 130, 500} {
		trials = append(trials, TrialResult{A: "preserve-rst", B: "symmetric", Trial: i, OK: true, Path: "so srflx↔srflx", ConnectMs: ms})
	}
	trials[3].Path = "relay"
	for i := range 9 { // the tcp-so trials report attempts, one needed two
		if i != 3 {
			trials[i].Attempts = 1
		}
	}
	trials[5].Attempts = 2
	trials = append(trials, TrialResult{Trial: 10, Reason: "timeout"}, TrialResult{Trial: 11, Reason: "timeout"})
	c := aggregate("preserve-rst", "symmetric", 50*time.Millisecond, trials)
	if c.Trials != 12 || c.Successes != 10 || c.SuccessRate != 10.0/12 {
		t.Errorf("counts %+v", c)
	}
	// Sorted: 80 90 95 100 105 110 120 130 300 500. Nearest rank: p50 =
	// 5th = 105, p95 = 10th = 500.
	if c.MedianMs != 105 || c.P95Ms != 500 || c.MedianRTTs != 2.1 || c.P95RTTs != 10 {
		t.Errorf("median %v p95 %v rtts %v %v", c.MedianMs, c.P95Ms, c.MedianRTTs, c.P95RTTs)
	}
	if c.Punched != 8 || c.FirstAttempt != 7 {
		t.Errorf("first attempt %d/%d, want 7/8", c.FirstAttempt, c.Punched)
	}
	if c.Paths["so srflx↔srflx"] != 9 || c.Paths["relay"] != 1 || c.Failures["timeout"] != 2 || c.DominantPath() != "so srflx↔srflx" {
		t.Errorf("paths %v failures %v", c.Paths, c.Failures)
	}
	lan := aggregate("preserve-rst", "preserve-rst", 0, trials[:1])
	if lan.MedianRTTs != 0 {
		t.Errorf("RTT 0 must not divide: %v", lan.MedianRTTs)
	}

	m := &MatrixResult{Profiles: []string{"preserve-rst", "symmetric"}, Trials: 12, Cells: []CellResult{c, lan}}
	var buf bytes.Buffer
	if err := m.Table(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	for _, want := range []string{"A \\ B", "10/12 so srflx↔srflx", "timeout×2", "2.1", "relay×1", "first attempt", "7/8"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if _, err := json.Marshal(m); err != nil {
		t.Errorf("MatrixResult is not JSON-marshallable: %v", err)
	}
}

func TestRunMatrixValidates(t *testing.T) {
	if _, err := RunMatrix(t.Context(), MatrixConfig{}); err == nil {
		t.Error("no binary accepted")
	}
	if _, err := RunMatrix(t.Context(), MatrixConfig{Binary: "/bin/true", Profiles: []string{"nope"}}); err == nil {
		t.Error("unknown profile accepted")
	}
}
