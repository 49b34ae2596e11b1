//go:build linux

package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// LockDir holds one lock file per live run. A run holds an exclusive flock
// on its file for as long as it lives, and the kernel drops the lock when
// the process dies, so Cleanup can tell a crashed run's leftovers from the
// namespaces of a run that is still going (another test package in
// parallel, another lab on the same machine).
const LockDir = "/run/icetcp-lab"

// Run is one lab run's name prefix and its liveness lock.
type Run struct {
	Prefix string
	lock   *os.File
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`)

// ValidPrefix reports whether p can prefix every name a lab creates:
// interface names take at most 15 bytes, and the lab appends up to 5.
func ValidPrefix(p string) error {
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("netns: prefix %q must be 1-10 lower-case letters or digits, starting with a letter", p)
	}
	return nil
}

// NewRun claims a run prefix: prefix itself if not empty, else base plus six
// random hex digits. It fails if the prefix is held by a live run.
func NewRun(base, prefix string) (*Run, error) {
	if prefix == "" {
		var b [3]byte
		rand.Read(b[:])
		prefix = base + hex.EncodeToString(b[:])
	}
	if err := ValidPrefix(prefix); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(LockDir, 0o755); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	f, held, err := tryLock(prefix)
	if err != nil {
		return nil, err
	}
	if held {
		return nil, fmt.Errorf("netns: prefix %s is in use by a live run", prefix)
	}
	return &Run{Prefix: prefix, lock: f}, nil
}

// Release removes the lock file and drops the lock. Call it after the
// run's namespaces are gone.
func (r *Run) Release() {
	if r == nil || r.lock == nil {
		return
	}
	os.Remove(r.lock.Name())
	r.lock.Close()
	r.lock = nil
}

// tryLock opens and locks prefix's lock file; held reports that another
// live run has it (then f is nil).
func tryLock(prefix string) (f *os.File, held bool, err error) {
	f, err = os.OpenFile(filepath.Join(LockDir, prefix+".lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("netns: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("netns: flock %s: %w", f.Name(), err)
	}
	return f, false, nil
}

// runOf returns the run prefix of a lab-made name: namespaces are
// "<prefix>-<role>"; interfaces carry no separator, so for them the
// whole name is matched against live prefixes instead.
func runOf(name string) string {
	p, _, _ := strings.Cut(name, "-")
	return p
}

// stale lists namespaces and root-namespace interfaces whose names start
// with base and that belong to no live run.
func stale(base string) (nss, links []string, err error) {
	all, err := List(base)
	if err != nil {
		return nil, nil, err
	}
	live := map[string]bool{}
	isLive := func(prefix string) bool {
		if v, ok := live[prefix]; ok {
			return v
		}
		f, held, err := tryLock(prefix)
		if err == nil && !held {
			f.Close() // not removed here: Cleanup removes it after the namespaces
		}
		live[prefix] = held
		return held
	}
	for _, ns := range all {
		if !isLive(runOf(ns)) {
			nss = append(nss, ns)
		}
	}
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		if !strings.HasPrefix(ifc.Name, base) {
			continue
		}
		owned := false
		for p, v := range live {
			if v && strings.HasPrefix(ifc.Name, p) {
				owned = true
			}
		}
		if !owned {
			links = append(links, ifc.Name)
		}
	}
	return nss, links, nil
}

// Leftovers lists what Cleanup(base) would remove: namespaces ("netns
// NAME") and interfaces in the caller's namespace ("link NAME") whose names
// start with base and whose run is no longer alive.
func Leftovers(base string) ([]string, error) {
	nss, links, err := stale(base)
	var out []string
	for _, n := range nss {
		out = append(out, "netns "+n)
	}
	for _, l := range links {
		out = append(out, "link "+l)
	}
	return out, err
}

// Cleanup kills the processes in, and deletes, every namespace left over by
// dead runs whose prefix starts with base, deletes stray interfaces with
// that base in the caller's namespace, and removes the dead runs' lock files.
func Cleanup(ctx context.Context, base string) error {
	if base == "" {
		return errors.New("netns: cleanup needs a non-empty base prefix")
	}
	nss, links, err := stale(base)
	if err != nil {
		return err
	}
	var errs []error
	runs := map[string]bool{}
	for _, ns := range nss {
		runs[runOf(ns)] = true
		errs = append(errs, Destroy(ctx, ns))
	}
	for _, l := range links {
		errs = append(errs, Exec(ctx, "", "ip", "link", "delete", l))
	}
	for r := range runs {
		os.Remove(filepath.Join(LockDir, r+".lock"))
	}
	return errors.Join(errs...)
}

// Destroy kills every process inside ns and deletes it.
func Destroy(ctx context.Context, ns string) error {
	pids, err := Pids(ctx, ns)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return errors.Join(err, Delete(ctx, ns))
}
