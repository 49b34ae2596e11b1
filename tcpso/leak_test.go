package tcpso

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// checkLeaks fails the test if, after it ends, a goroutine running code of
// this package is still alive (goleak is not in the module cache, and this is
// all the tests need). Call it at the start of a top-level test only: a
// parent test blocked in t.Run would count as a leak of its subtest.
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
	// The first stack is the calling goroutine (the test's cleanup).
	for _, g := range strings.Split(string(buf), "\n\n")[1:] {
		if strings.Contains(g, "github.com/icetcp/icetcp/tcpso.") {
			out = append(out, g)
		}
	}
	return out
}
