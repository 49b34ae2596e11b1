package child

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Writers on several goroutines (a process's stdout and stderr) and a
// reader at any time: nothing lost, and Tail keeps the end.
func TestOutput(t *testing.T) {
	var o Output
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&o, "%d:%03d\n", w, i)
				_ = o.Tail(10)
			}
		})
	}
	wg.Wait()
	if n := strings.Count(o.String(), "\n"); n != 200 {
		t.Fatalf("%d lines, want 200", n)
	}
	if got := Tail("  log line\n  end  \n", 6); got != "end" {
		t.Errorf("Tail = %q, want %q", got, "end")
	}
	if got := Tail("short", 100); got != "short" {
		t.Errorf("Tail of a short log = %q", got)
	}
}
