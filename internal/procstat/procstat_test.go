package procstat

import (
	"os"
	"testing"
	"time"
)

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
		cpu, err = CPUSeconds(os.Getpid())
	}
	if err != nil || cpu <= 0 {
		t.Fatalf("CPUSeconds = %v, %v (sum %d)", cpu, err, sum)
	}
	rss, err := RSSKiB(os.Getpid())
	if err != nil || rss < 1000 {
		t.Fatalf("RSSKiB = %v, %v", rss, err)
	}
}
