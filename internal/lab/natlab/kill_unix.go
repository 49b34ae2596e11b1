//go:build unix

package natlab

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// killGroup kills the command's whole process group (it was started with
// Setpgid), so `ip netns exec` children go too.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// reraise delivers sig to ourselves again after cleaning up, so the
// default action (exit) happens.
func reraise(sig os.Signal) {
	if s, ok := sig.(syscall.Signal); ok {
		syscall.Kill(os.Getpid(), s)
	}
}
