//go:build !unix

package child

import (
	"os"
	"syscall"
)

func attr(bool) *syscall.SysProcAttr { return nil }

func killGroup(*os.Process) {}
