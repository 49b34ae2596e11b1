package natlab

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"
)

// Event is one JSON line an `icetcp connect --json` writes to stderr.
type Event struct {
	Event     string  `json:"event"`
	Local     string  `json:"local,omitempty"`
	Remote    string  `json:"remote,omitempty"`
	Path      string  `json:"path,omitempty"`
	ConnectMs float64 `json:"connect_ms,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	// Attempts is, on a "selected" event of a tcp-so pair, the connect
	// attempt of the winning punch (1: the first SYN exchange); 0 when the
	// agent does not report it.
	Attempts int `json:"attempts,omitempty"`
	// NATLocal and NATRemote are the NAT classes (internal/natcheck) of
	// this side and of the peer, when they were measured.
	NATLocal  string `json:"nat_local,omitempty"`
	NATRemote string `json:"nat_remote,omitempty"`
	// AtBytes is, on "path" and "resumed", the session's bytes (both
	// directions) when it moved.
	AtBytes int64 `json:"at_bytes,omitempty"`
	// Sent and Received are, on "progress" and "done", the application
	// bytes so far.
	Sent     int64 `json:"sent,omitempty"`
	Received int64 `json:"received,omitempty"`
	// HandshakeMs is, on "secured", how long the end-to-end handshake
	// took after the selection.
	HandshakeMs float64 `json:"handshake_ms,omitempty"`
	// Paths are, on "done", the bytes each path of the session carried.
	Paths []PathBytes `json:"paths,omitempty"`
	// At is when the event was read, from the start of its Session; zero
	// elsewhere.
	At time.Duration `json:"-"`
}

// PathBytes is one path of a session in a "done" event.
type PathBytes struct {
	Path  string `json:"path"` // "relay" or "direct"
	Bytes int64  `json:"bytes"`
	// AfterDirect is, for a relayed path, what it carried (both
	// directions) after a direct pair validated.
	AfterDirect int64 `json:"after_direct"`
}

// ParseEvents reads stderr output and returns the JSON event lines,
// skipping anything that is not one (log lines, partial writes).
func ParseEvents(stderr []byte) []Event { return stampedEvents(stderr, nil) }

// stampedEvents is ParseEvents with each event's At taken from at, the
// arrival times of stderr's lines (missing ones are zero).
func stampedEvents(stderr []byte, at []time.Duration) []Event {
	var out []Event
	for i, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e Event
		if json.Unmarshal([]byte(line), &e) == nil && e.Event != "" {
			if i < len(at) {
				e.At = at[i]
			}
			out = append(out, e)
		}
	}
	return out
}

// candidateTokens pulls the "typ" and "tcptype" values out of an SDP
// candidate line (RFC 5245 §15.1, RFC 6544 §4.5). Extensions may appear in
// any order after the address, so it scans key/value pairs.
func candidateTokens(line string) (typ, tcptype string) {
	f := strings.Fields(strings.TrimPrefix(strings.TrimPrefix(line, "a="), "candidate:"))
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "typ":
			typ = f[i+1]
		case "tcptype":
			tcptype = f[i+1]
		}
	}
	return typ, tcptype
}

// ClassifyPath names the winning pair as seen from peer A: "so <A
// typ>↔<B typ>" for simultaneous open, "active→passive <A>→<B>" when A
// connected, "passive←active <A>←<B>" when B connected to A, each with
// the prefix "relay " when either candidate is relayed (e.g. "relay
// passive←active relay←srflx": B connected to A's relayed address).
// Unparseable lines give "unknown".
func ClassifyPath(local, remote string) string {
	lt, ltcp := candidateTokens(local)
	rt, rtcp := candidateTokens(remote)
	if lt == "" || rt == "" {
		return "unknown"
	}
	if lt == "relay" || rt == "relay" {
		return "relay " + directionOf(lt, ltcp, rt, rtcp)
	}
	return directionOf(lt, ltcp, rt, rtcp)
}

// IsRelayPath reports whether a ClassifyPath result is a relayed pair.
func IsRelayPath(path string) bool { return strings.HasPrefix(path, "relay ") }

func directionOf(lt, ltcp, rt, rtcp string) string {
	switch {
	case ltcp == "so" && rtcp == "so":
		return "so " + lt + "↔" + rt
	case ltcp == "active" && rtcp == "passive":
		return "active→passive " + lt + "→" + rt
	case ltcp == "passive" && rtcp == "active":
		return "passive←active " + lt + "←" + rt
	default:
		return ltcp + "/" + rtcp + " " + lt + "↔" + rt
	}
}

// TrialResult is one connection attempt between A and B.
type TrialResult struct {
	A, B  string // profile names
	Trial int    // 0-based
	Room  string // rendezvous room used (derived from the secret by default)
	OK    bool   // both selected a pair and both payloads arrived intact
	Path  string // ClassifyPath of A's last path: its selected event, or the last session move after it; "" if none
	// FirstPath is ClassifyPath of A's selected event when the session
	// moved after it (a relay start upgraded to a direct pair); "" when
	// it did not move.
	FirstPath string  `json:",omitempty"`
	ConnectMs float64 // the slower side's connect_ms
	Reason    string  // why not OK
	// ElapsedMs is the whole trial, from starting both connects until both
	// exited: connecting, the secure handshake, the payloads, closing.
	ElapsedMs float64
	// Attempts is the winning tcp-so punch's attempt as the agents report
	// it (the larger of the two sides); 0 when not reported or not tcp-so.
	Attempts int
	// NATA and NATB are A's and B's NAT classes as the agents measured
	// them (internal/natcheck's text form); "" when not measured.
	NATA, NATB string `json:",omitempty"`
	// FirstByteMs is when the slower side could carry its first byte,
	// from the peer's credentials: its connect_ms and its end-to-end
	// handshake.
	FirstByteMs float64 `json:",omitempty"`
	// MoveMs is, for a session that started on the relay and moved to a
	// direct path, the time from A's selection to A's move (both as A's
	// stderr told them); 0 otherwise.
	MoveMs float64 `json:",omitempty"`
	// AfterDirect is, for such a session, what the relay carried after
	// the direct pair validated (the larger of the two sides' counts);
	// -1 when the agents did not report it.
	AfterDirect int64 `json:",omitempty"`
	// AwaitDirect is this trial's counterfactual twin (MatrixConfig.
	// Counterfactual): the same cell run again right after it with
	// --await-direct; nil when none ran.
	AwaitDirect *TrialResult `json:",omitempty"`
}

// CellResult aggregates the trials of one A×B combination.
type CellResult struct {
	A, B        string
	Trials      int
	Successes   int
	SuccessRate float64
	Paths       map[string]int // winning path → count
	MedianMs    float64        // connect time over successful trials
	P95Ms       float64
	MedianRTTs  float64 // MedianMs / lab RTT; 0 when the RTT is 0
	P95RTTs     float64
	Failures    map[string]int // reason → count
	RTTMs       float64        // the lab's emulated A↔B RTT
	// FirstAttempt of Punched successful tcp-so trials that reported their
	// attempts connected on the first SYN exchange.
	FirstAttempt, Punched int
	// Moved counts the successful trials whose session moved after its
	// first selected pair (Path is where it ended).
	Moved int `json:",omitempty"`
	// RelayStarts counts the successful trials that started on the relay;
	// MedianFirstByteMs is their median time to the first byte.
	RelayStarts       int     `json:",omitempty"`
	MedianFirstByteMs float64 `json:",omitempty"`
	// Upgraded counts those that moved to a direct path; MedianMoveMs is
	// their median time from the relay's selection to the move, and
	// MaxAfterDirect the most a relay carried after the direct pair
	// validated (-1: no trial's agents reported it).
	Upgraded       int     `json:",omitempty"`
	MedianMoveMs   float64 `json:",omitempty"`
	MaxAfterDirect int64   `json:",omitempty"`
	// NATs counts the successful trials' NAT classes, "A class | B class"
	// (empty when no agent measured one).
	NATs map[string]int `json:",omitempty"`
	// AwaitDirect summarises the counterfactual twins of the cell's
	// relayed trials; nil when none ran.
	AwaitDirect *AwaitResult  `json:",omitempty"`
	Results     []TrialResult `json:",omitempty"`
}

// AwaitResult is what a cell's relayed trials would have cost had the
// agents waited for every direct pair to fail (--await-direct), measured
// by running each again.
type AwaitResult struct {
	Trials, Successes int
	MedianMs, P95Ms   float64 // connect time over the successful twins
	// MedianRTTs and P95RTTs are in the lab's A↔B RTT; 0 when it is 0.
	MedianRTTs, P95RTTs float64
	Paths, Failures     map[string]int
	// Faster counts the pairs (trial and twin both connected) in which
	// the fast fallback connected sooner than its await-direct twin, of
	// Pairs.
	Faster, Pairs int
}

// MatrixResult is the outcome of RunMatrix.
type MatrixResult struct {
	Rows     []string // A
	Profiles []string // B (and A when Rows is empty)
	Trials   int
	Delay    time.Duration // one-way delay per peer link
	Relay    Relay         // the relay the peers were given
	Load     int           // busy processes that ran beside the lab (MatrixConfig.Load)
	Cells    []CellResult  // in the order run: Rows × Profiles, or MatrixConfig.Cells
}

// tally counts trials by outcome: successes by path, failures by reason,
// and the connect times of the successes.
type tally struct {
	trials, successes int
	paths, failures   map[string]int
	ms                []float64
}

func newTally() tally { return tally{paths: map[string]int{}, failures: map[string]int{}} }

// add counts t and reports whether it succeeded.
func (y *tally) add(t TrialResult) bool {
	y.trials++
	if !t.OK {
		y.failures[t.Reason]++
		return false
	}
	y.successes++
	y.paths[t.Path]++
	y.ms = append(y.ms, t.ConnectMs)
	return true
}

// aggregate summarises trials of one cell.
func aggregate(a, b string, rtt time.Duration, trials []TrialResult) CellResult {
	y := newTally()
	c := CellResult{A: a, B: b, Trials: len(trials), Paths: y.paths, Failures: y.failures,
		RTTMs: float64(rtt) / float64(time.Millisecond), Results: trials}
	var firstByte, move []float64
	for _, t := range trials {
		if !y.add(t) {
			continue
		}
		if t.FirstPath != "" {
			c.Moved++
		}
		if IsRelayPath(t.FirstPath) || (t.FirstPath == "" && IsRelayPath(t.Path)) {
			c.RelayStarts++
			firstByte = append(firstByte, t.FirstByteMs)
			if !IsRelayPath(t.Path) {
				c.Upgraded++
				move = append(move, t.MoveMs)
				if c.Upgraded == 1 {
					c.MaxAfterDirect = -1
				}
				c.MaxAfterDirect = max(c.MaxAfterDirect, t.AfterDirect)
			}
		}
		if t.Attempts > 0 {
			c.Punched++
			if t.Attempts == 1 {
				c.FirstAttempt++
			}
		}
		if t.NATA != "" || t.NATB != "" {
			if c.NATs == nil {
				c.NATs = map[string]int{}
			}
			c.NATs[orDash(t.NATA)+" | "+orDash(t.NATB)]++
		}
	}
	c.Successes = y.successes
	if c.Trials > 0 {
		c.SuccessRate = float64(c.Successes) / float64(c.Trials)
	}
	c.MedianMs, c.P95Ms, c.MedianRTTs, c.P95RTTs = timing(y.ms, c.RTTMs)
	c.MedianFirstByteMs, c.MedianMoveMs = percentile(firstByte, 50), percentile(move, 50)
	c.AwaitDirect = aggregateTwins(trials, c.RTTMs)
	return c
}

// aggregateTwins summarises the await-direct twins of trials; nil when
// there are none.
func aggregateTwins(trials []TrialResult, rttMs float64) *AwaitResult {
	y := newTally()
	aw := &AwaitResult{}
	for _, t := range trials {
		tw := t.AwaitDirect
		if tw == nil || !y.add(*tw) || !t.OK {
			continue
		}
		aw.Pairs++
		if t.ConnectMs < tw.ConnectMs {
			aw.Faster++
		}
	}
	if y.trials == 0 {
		return nil
	}
	aw.Trials, aw.Successes, aw.Paths, aw.Failures = y.trials, y.successes, y.paths, y.failures
	aw.MedianMs, aw.P95Ms, aw.MedianRTTs, aw.P95RTTs = timing(y.ms, rttMs)
	return aw
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// timing is the median and p95 of connect times, in ms and in RTTs (0
// when rttMs is 0).
func timing(ms []float64, rttMs float64) (median, p95, medianRTTs, p95RTTs float64) {
	median, p95 = percentile(ms, 50), percentile(ms, 95)
	if rttMs > 0 {
		medianRTTs, p95RTTs = median/rttMs, p95/rttMs
	}
	return median, p95, medianRTTs, p95RTTs
}

// percentile by the nearest-rank method; 0 for no samples.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

// DominantPath is the most frequent winning path ("" if none; ties by name).
func (c CellResult) DominantPath() string { return dominant(c.Paths) }

func dominant(m map[string]int) string {
	best, n := "", 0
	for p, k := range m {
		if k > n || (k == n && p < best) {
			best, n = p, k
		}
	}
	return best
}
