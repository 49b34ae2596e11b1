package natlab

import (
	"fmt"
	"os"
	"testing"
)

// requireRoot skips tests that need namespaces, nftables and TUN devices,
// except under CI=true where not being able to run them is a failure.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("natlab: this test needs root (namespaces, nftables, TUN) and CI=true forbids skipping it")
	}
	t.Skip("natlab: needs root for network namespaces, nftables and TUN devices; run as root (CI=true makes this a failure)")
}

func TestMain(m *testing.M) {
	root := os.Geteuid() == 0
	if root {
		// Dead runs only: live labs of parallel test binaries hold their lock.
		if err := Cleanup(BasePrefix); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	code := m.Run()
	if root {
		left, err := Leftovers(BasePrefix)
		if err != nil || len(left) > 0 {
			fmt.Fprintf(os.Stderr, "natlab: leftovers after the tests: %v %v\n", left, err)
			Cleanup(BasePrefix)
			code = 1
		}
	}
	os.Exit(code)
}
