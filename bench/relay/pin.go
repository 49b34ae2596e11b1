package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
)

// relayCPUs is where -pin puts each relay: one CPU, the same for both.
const relayCPUs = "0"

// genCPUs is where -pin puts the load generator: every other CPU.
func genCPUs() string {
	if runtime.NumCPU() == 2 {
		return "1"
	}
	return fmt.Sprintf("1-%d", runtime.NumCPU()-1)
}

func canPin() bool {
	_, err := exec.LookPath("taskset")
	return err == nil && runtime.NumCPU() >= 2
}

// pin moves every thread of process pid to cpus (taskset -a); threads it
// starts later inherit it.
func pin(pid int, cpus string) error {
	out, err := exec.Command("taskset", "-a", "-c", "-p", cpus, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: taskset -p %s %d: %v: %s", cpus, pid, err, out)
	}
	return nil
}
