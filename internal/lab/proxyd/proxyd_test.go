package proxyd

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
		// Its process group, helpers and workers included: SIGKILL is
		// delivered at once, but a killed process runs until the kernel
		// schedules its end (and then waits, a zombie, for init).
		var live []string
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if live = liveInGroup(s.cmd.Process.Pid); len(live) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(live) > 0 {
			t.Errorf("%s: still running in its process group: %v", s.name, live)
		}
	}
	if left, _ := filepath.Glob(filepath.Join("/dev/shm", name+"-*")); len(left) > 0 {
		t.Errorf("squid left %v", left)
	}
}

// liveInGroup lists the processes of process group pgid that are not
// zombies, from /proc.
func liveInGroup(pgid int) []string {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b)[i+1:])
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(fields[2]); g == pgid {
			out = append(out, string(b[:i+1]))
		}
	}
	return out
}
