package tcpso

import (
	"testing"

	"go.uber.org/goleak"
)

// checkLeaks fails the test if a goroutine it started is still alive when
// it ends (goleak retries for a while before it reports). Call it at the
// start of a top-level test only: a parent blocked in t.Run would count.
func checkLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}
