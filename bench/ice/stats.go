package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// summary is the median and 95th percentile of durations.
type summary struct {
	n           int
	median, p95 time.Duration
}

func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	idx := func(p float64) int { return min(len(s)-1, int(p*float64(len(s)-1)+0.5)) }
	return summary{n: len(s), median: s[idx(0.5)], p95: s[idx(0.95)]}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// trialRow is one line of a timing table.
type trialRow struct {
	name string
	run  func(ctx context.Context) (time.Duration, error)
}

// timingTable runs every row trials times and prints the median and 95th
// percentile of the successful trials, and how many failed (with the last
// error).
func timingTable(w io.Writer, title, firstColumn string, trials int, timeout time.Duration, rows []trialRow) {
	fmt.Fprintf(w, "## %s\n\n", title)
	fmt.Fprintf(w, "| %s | median ms | p95 ms | failed |\n", firstColumn)
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, r := range rows {
		var ds []time.Duration
		failed := 0
		var lastErr error
		for range trials {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			d, err := r.run(ctx)
			cancel()
			if err != nil {
				failed, lastErr = failed+1, err
				continue
			}
			ds = append(ds, d)
		}
		note := fmt.Sprint(failed)
		if lastErr != nil {
			note += fmt.Sprintf(" (%v)", lastErr)
		}
		s := summarize(ds)
		if s.n == 0 {
			fmt.Fprintf(w, "| %s | - | - | %s |\n", r.name, note)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.name, ms(s.median), ms(s.p95), note)
	}
	fmt.Fprintln(w)
}
