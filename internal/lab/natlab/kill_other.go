//go:build !unix

package natlab

import (
	"os"
	"os/exec"
)

func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}

func reraise(sig os.Signal) { os.Exit(1) }
