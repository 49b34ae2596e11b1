// Package child starts the lab's helper processes (coturn, squid, dante,
// libnice and pion peers, busy loops) so that they never outlive the test
// that started them: on Linux the kernel kills a child whose parent died
// (PR_SET_PDEATHSIG), and a child in a group of its own is killed with
// its helpers.
package child

import (
	"os"
	"os/exec"
)

// Prepare sets cmd's process attributes, unless the caller set its own:
// killed with this process (Linux), and with group in a process group of
// its own (Unix), so that KillGroup reaches its helpers.
func Prepare(cmd *exec.Cmd, group bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = attr(group)
	}
}

// KillGroup kills p and, when it leads a process group of its own, the
// whole group.
func KillGroup(p *os.Process) {
	killGroup(p)
	_ = p.Kill()
}
