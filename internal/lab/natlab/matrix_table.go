package natlab

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Table prints the matrix (rows A, columns B: successes/trials and the
// dominant path) and then one line per cell with timings and failures.
// Columns for the counterfactual (await-direct) and the NAT classes appear
// only when some cell has them.
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
	rows := m.Rows
	if rows == nil {
		rows = m.Profiles
	}
	for _, a := range rows {
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

	withAwait, withNAT, withRelay := false, false, false
	for _, c := range m.Cells {
		withAwait = withAwait || c.AwaitDirect != nil
		withNAT = withNAT || len(c.NATs) > 0
		withRelay = withRelay || c.RelayStarts > 0
	}
	fmt.Fprint(tw, "A\tB\tok\tmedian ms\tp95 ms\tmedian RTTs\tp95 RTTs")
	if withAwait {
		fmt.Fprint(tw, "\tawait-direct ok\tawait median RTTs\tawait p95 RTTs\tfast<await")
	}
	fmt.Fprint(tw, "\tfirst attempt")
	if withRelay {
		// The sessions that started on the relay: time to the first byte
		// (selection and end-to-end handshake), to the move to a direct
		// path, and what the relay carried after the direct pair
		// validated (the most of any trial).
		fmt.Fprint(tw, "\trelay 1st byte RTTs\tto direct ms\trelay after direct")
	}
	if withNAT {
		fmt.Fprint(tw, "\tNAT A | B")
	}
	fmt.Fprintln(tw, "\tpaths\tfailures")
	for _, c := range m.Cells {
		rtts := func(x float64, ok bool) string {
			if c.RTTMs == 0 || !ok {
				return "-"
			}
			return fmt.Sprintf("%.1f", x)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%.0f\t%.0f\t%s\t%s", c.A, c.B, c.Successes, c.Trials,
			c.MedianMs, c.P95Ms, rtts(c.MedianRTTs, c.Successes > 0), rtts(c.P95RTTs, c.Successes > 0))
		if withAwait {
			if aw := c.AwaitDirect; aw != nil {
				fmt.Fprintf(tw, "\t%d/%d\t%s\t%s\t%d/%d", aw.Successes, aw.Trials,
					rtts(aw.MedianRTTs, aw.Successes > 0), rtts(aw.P95RTTs, aw.Successes > 0), aw.Faster, aw.Pairs)
			} else {
				fmt.Fprint(tw, "\t-\t-\t-\t-")
			}
		}
		first := "-"
		if c.Punched > 0 {
			first = fmt.Sprintf("%d/%d", c.FirstAttempt, c.Punched)
		}
		fmt.Fprintf(tw, "\t%s", first)
		if withRelay {
			fmt.Fprintf(tw, "\t%s", relayColumns(c))
		}
		if withNAT {
			fmt.Fprintf(tw, "\t%s", shortNATs(c.NATs))
		}
		failures := counts(c.Failures)
		if aw := c.AwaitDirect; aw != nil && len(aw.Failures) > 0 {
			failures += "; await-direct: " + counts(aw.Failures)
		}
		paths := counts(c.Paths)
		if c.Moved > 0 {
			paths += fmt.Sprintf(" (%d moved there)", c.Moved)
		}
		fmt.Fprintf(tw, "\t%s\t%s\n", paths, failures)
	}
	return tw.Flush()
}

// relayColumns are a cell's relay columns: "-" where no session started
// on the relay, or none moved to a direct path.
func relayColumns(c CellResult) string {
	if c.RelayStarts == 0 {
		return "-\t-\t-"
	}
	first := fmt.Sprintf("%.0f ms", c.MedianFirstByteMs)
	if c.RTTMs > 0 {
		first = fmt.Sprintf("%.1f", c.MedianFirstByteMs/c.RTTMs)
	}
	if c.Upgraded == 0 {
		return first + "\t-\t-"
	}
	after := "?"
	if c.MaxAfterDirect >= 0 {
		after = fmt.Sprintf("%d B", c.MaxAfterDirect)
	}
	return fmt.Sprintf("%s\t%.0f (%d/%d)\t%s", first, c.MedianMoveMs, c.Upgraded, c.RelayStarts, after)
}

// shortNATs is the most frequent NAT class pair, each class reduced to
// its mapping and what an unsolicited SYN meets ("eim rst | apdm rst"),
// with the number of other pairs seen.
func shortNATs(m map[string]int) string {
	top := dominant(m)
	if top == "" {
		return "-"
	}
	a, b, _ := strings.Cut(top, " | ")
	s := shortNAT(a) + " | " + shortNAT(b)
	if len(m) > 1 {
		s += fmt.Sprintf(" (+%d)", len(m)-1)
	}
	return s
}

// shortNAT reduces "v1 mapping=eim port=preserve alloc=preserve syn=rst"
// to "eim rst".
func shortNAT(class string) string {
	var mapping, syn string
	for _, f := range strings.Fields(class) {
		if v, ok := strings.CutPrefix(f, "mapping="); ok {
			mapping = v
		} else if v, ok := strings.CutPrefix(f, "syn="); ok {
			syn = v
		}
	}
	if mapping == "" {
		return class // "-", or a form this does not know
	}
	return strings.TrimSpace(mapping + " " + syn)
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
