package proxyd

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestStopLeavesNothing: after Stop, neither proxy leaves its folder, its
// processes or (squid) its shared-memory segments behind.
func TestStopLeavesNothing(t *testing.T) {
	if !Installed() {
		if os.Getenv("CI") == "true" {
			t.Fatal(ErrNotInstalled.Error() + " and CI=true forbids skipping")
		}
		t.Skip(ErrNotInstalled.Error() + "; skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sq, err := StartSquid(ctx, SquidConfig{Users: map[string]string{"u": "p"}})
	if err != nil {
		t.Fatal(err)
	}
	da, err := StartDante(ctx, DanteConfig{})
	if err != nil {
		t.Fatal(err)
	}
	name := sq.cmd.Args[slices.Index(sq.cmd.Args, "-n")+1]
	shm, _ := filepath.Glob(filepath.Join("/dev/shm", name+"-*"))
	if len(shm) == 0 {
		t.Logf("squid %s made no shared-memory segments", name)
	}
	for _, s := range []*Server{sq, da} {
		s.Stop()
		if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
			t.Errorf("%s: folder %s still there (%v)", s.name, s.dir, err)
		}
		// Its process group, helpers included (squid's NCSA helper).
		if err := syscall.Kill(-s.cmd.Process.Pid, 0); err != syscall.ESRCH {
			t.Errorf("%s: process group %d still there (%v)", s.name, s.cmd.Process.Pid, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join("/dev/shm", name+"-*")); len(left) > 0 {
		t.Errorf("squid left %v", left)
	}
}
