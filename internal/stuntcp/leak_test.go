package stuntcp

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// checkLeaks fails the test if, after it ends, a goroutine running code of
// this package is still alive (goleak is not in the module cache). Use it in
// top-level tests only: a parent blocked in t.Run would count as a leak.
func checkLeaks(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			leaked := leakedGoroutines()
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func leakedGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n")[1:] { // [0] is the caller
		if strings.Contains(g, "github.com/icetcp/icetcp/internal/stuntcp.") {
			out = append(out, g)
		}
	}
	return out
}
