//go:build unix

package natlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
)

// Load is CPU load made on purpose: busy processes beside the lab that
// compete with its agents, its delay line and its NATs for the host's
// cores, as a media server's other work or a laptop in a video call does.
// A busy host is then a test condition, not an excuse: "two busy loops"
// (`yes >/dev/null` twice) is what the punch must survive on two cores.
//
// Each busy process is a shell spinning in a loop at normal priority (the
// same share as the agents: nice 0) in its own process group. It ends
// when Stop kills it, and on its own when this process dies however it
// dies (SIGKILL included): every turn of its loop asks whether its parent
// still exists. (No parent-death signal: that follows the thread that
// started the process, and the lab's threads come and go with the
// namespaces they enter.)
type Load struct {
	procs []*exec.Cmd

	stopOnce sync.Once
	stopErr  error
}

// busyScript spins for as long as process $1 lives: the one that started
// it, named by its pid rather than $PPID, which is already 1 (or a
// subreaper) when that process died before the shell began.
const busyScript = `while kill -0 "$1" 2>/dev/null; do :; done`

// StartLoad starts n busy processes (n ≤ 0: none; Stop still works).
func StartLoad(n int) (*Load, error) {
	l := &Load{}
	for range n {
		cmd := exec.Command("/bin/sh", "-c", busyScript, "icetcp-load", strconv.Itoa(os.Getpid()))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			l.Stop()
			return nil, fmt.Errorf("natlab: load: start a busy process: %w", err)
		}
		l.procs = append(l.procs, cmd)
	}
	return l, nil
}

// Pids are the busy processes' ids (each leads its process group).
func (l *Load) Pids() []int {
	if l == nil {
		return nil
	}
	var out []int
	for _, c := range l.procs {
		out = append(out, c.Process.Pid)
	}
	return out
}

// Stop ends the busy processes and waits for them. It is idempotent and
// safe on a nil Load.
func (l *Load) Stop() error {
	if l == nil {
		return nil
	}
	l.stopOnce.Do(func() {
		var errs []error
		for _, c := range l.procs {
			if err := killGroup(c); err != nil {
				errs = append(errs, fmt.Errorf("natlab: load: kill %d: %w", c.Process.Pid, err))
			}
		}
		for _, c := range l.procs {
			c.Wait() // killed: "signal: killed" is the expected end
		}
		l.stopErr = errors.Join(errs...)
	})
	return l.stopErr
}
