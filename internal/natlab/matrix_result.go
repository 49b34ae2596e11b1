package natlab

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
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
}

// ParseEvents reads stderr output and returns the JSON event lines,
// skipping anything that is not one (log lines, partial writes).
func ParseEvents(stderr []byte) []Event {
	var out []Event
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e Event
		if json.Unmarshal([]byte(line), &e) == nil && e.Event != "" {
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

// ClassifyPath names the winning pair as seen from peer A: "relay" if
// either side is relayed, "so <A typ>↔<B typ>" for simultaneous open,
// "active→passive <A>→<B>" when A connected, "passive←active <A>←<B>"
// when B connected to A. Unparseable lines give "unknown".
func ClassifyPath(local, remote string) string {
	lt, ltcp := candidateTokens(local)
	rt, rtcp := candidateTokens(remote)
	switch {
	case lt == "" || rt == "":
		return "unknown"
	case lt == "relay" || rt == "relay":
		return "relay"
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
	A, B      string  // profile names
	Trial     int     // 0-based
	Room      string  // rendezvous room used
	OK        bool    // both selected a pair and both payloads arrived intact
	Path      string  // ClassifyPath from A's selected event; "" if none
	ConnectMs float64 // the slower side's connect_ms
	Reason    string  // why not OK
	// Attempts is the winning tcp-so punch's attempt as the agents report
	// it (the larger of the two sides); 0 when not reported or not tcp-so.
	Attempts int
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
	Results               []TrialResult `json:",omitempty"`
}

// MatrixResult is the outcome of RunMatrix.
type MatrixResult struct {
	Profiles []string
	Trials   int
	Delay    time.Duration // one-way delay per peer link
	Cells    []CellResult  // row-major: A = Profiles[i], B = Profiles[j]
}

// aggregate summarises trials of one cell.
func aggregate(a, b string, rtt time.Duration, trials []TrialResult) CellResult {
	c := CellResult{A: a, B: b, Trials: len(trials), Paths: map[string]int{},
		Failures: map[string]int{}, RTTMs: float64(rtt) / float64(time.Millisecond), Results: trials}
	var ms []float64
	for _, t := range trials {
		if t.OK {
			c.Successes++
			c.Paths[t.Path]++
			ms = append(ms, t.ConnectMs)
			if t.Attempts > 0 {
				c.Punched++
				if t.Attempts == 1 {
					c.FirstAttempt++
				}
			}
		} else {
			c.Failures[t.Reason]++
		}
	}
	if c.Trials > 0 {
		c.SuccessRate = float64(c.Successes) / float64(c.Trials)
	}
	c.MedianMs, c.P95Ms = percentile(ms, 50), percentile(ms, 95)
	if c.RTTMs > 0 {
		c.MedianRTTs, c.P95RTTs = c.MedianMs/c.RTTMs, c.P95Ms/c.RTTMs
	}
	return c
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
func (c CellResult) DominantPath() string {
	best, n := "", 0
	for p, k := range c.Paths {
		if k > n || (k == n && p < best) {
			best, n = p, k
		}
	}
	return best
}

// Table prints the matrix (rows A, columns B: successes/trials and the
// dominant path) and then one line per cell with timings and failures.
func (m *MatrixResult) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "A \\ B")
	for _, b := range m.Profiles {
		fmt.Fprintf(tw, "\t%s", b)
	}
	fmt.Fprintln(tw)
	byKey := map[[2]string]CellResult{}
	for _, c := range m.Cells {
		byKey[[2]string{c.A, c.B}] = c
	}
	for _, a := range m.Profiles {
		fmt.Fprint(tw, a)
		for _, b := range m.Profiles {
			c, ok := byKey[[2]string{a, b}]
			if !ok {
				fmt.Fprint(tw, "\t-")
				continue
			}
			cell := fmt.Sprintf("%d/%d", c.Successes, c.Trials)
			if p := c.DominantPath(); p != "" {
				cell += " " + p
			}
			fmt.Fprintf(tw, "\t%s", cell)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "A\tB\tok\tmedian ms\tp95 ms\tmedian RTTs\tp95 RTTs\tfirst attempt\tpaths\tfailures")
	for _, c := range m.Cells {
		rtts := func(x float64) string {
			if c.RTTMs == 0 || c.Successes == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f", x)
		}
		first := "-"
		if c.Punched > 0 {
			first = fmt.Sprintf("%d/%d", c.FirstAttempt, c.Punched)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\n", c.A, c.B, c.Successes, c.Trials,
			c.MedianMs, c.P95Ms, rtts(c.MedianRTTs), rtts(c.P95RTTs), first, counts(c.Paths), counts(c.Failures))
	}
	return tw.Flush()
}

// counts renders a map as "k×n, ..." sorted by count, then key.
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
