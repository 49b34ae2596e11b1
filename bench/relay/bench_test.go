package main

import (
	"os"
	"testing"
	"time"
)

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", 3061: "3,061"} {
		if got := thousands(v); got != want {
			t.Errorf("thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

// The /proc readers on this process: some CPU used, some memory resident.
func TestProcReaders(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	// Burn CPU until the kernel has counted a tick of it (10 ms): a fixed
	// loop can be optimised away or fit between two ticks.
	var cpu float64
	var err error
	sum := 0
	for start := time.Now(); cpu == 0 && err == nil && time.Since(start) < time.Minute; {
		for i := range 1_000_000 {
			sum += i ^ sum
		}
		cpu, err = cpuSeconds(os.Getpid())
	}
	if err != nil || cpu <= 0 {
		t.Fatalf("cpuSeconds = %v, %v (sum %d)", cpu, err, sum)
	}
	rss, err := rssKiB(os.Getpid())
	if err != nil || rss < 1000 {
		t.Fatalf("rssKiB = %v, %v", rss, err)
	}
}
