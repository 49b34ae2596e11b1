package interop

import (
	"os"
	"testing"
)

// requireTool skips t when err says a tool is missing, except under
// CI=true, where the test command must have installed it.
func requireTool(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v\nCI=true forbids skipping: run scripts/install-interop.sh", err)
	}
	t.Skipf("skipped: %v", err)
}

// stopAtEnd stops p when t ends and prints its log if t failed.
func stopAtEnd(t testing.TB, p *Peer) {
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s peer log:\n%s", p.Kind(), p.Log())
		}
	})
}
