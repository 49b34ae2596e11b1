//go:build unix && !linux

package child

import (
	"os"
	"syscall"
)

// Elsewhere there is no parent-death signal: a test that dies may leave
// its children.
func attr(group bool) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: group} }

func killGroup(p *os.Process) { _ = syscall.Kill(-p.Pid, syscall.SIGKILL) }
