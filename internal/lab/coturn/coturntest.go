package coturn

import (
	"context"
	"os"
	"testing"
	"time"
)

// StartT starts coturn for a test and stops it at the test's end. Without
// turnserver installed the test is skipped, except under CI=true, where the
// test command must have installed it and the test fails instead.
func StartT(t testing.TB, cfg Config) *Coturn {
	t.Helper()
	if cfg.Wrap == nil && !Installed() {
		if os.Getenv("CI") == "true" {
			t.Fatal("coturn: turnserver is not installed and CI=true forbids skipping (apt-get install coturn)")
		}
		t.Skip("coturn: turnserver not installed (apt-get install coturn); skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("coturn stop: %v", err)
		}
		if t.Failed() {
			t.Logf("coturn log:\n%s", c.out.Tail(logTail))
		}
	})
	return c
}
