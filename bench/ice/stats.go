package main

import (
	"fmt"
	"slices"
	"syscall"
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

// cpuTime is the user+system CPU time of this process, or of its reaped
// children.
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func selfCPU() time.Duration { return cpuTime(syscall.RUSAGE_SELF) }
