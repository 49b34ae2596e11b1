// Package procstat reads what a Linux process used from /proc (CPU time,
// resident memory) and pins this process to CPUs, for the bench programs.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// it is 100 on every Linux architecture Go supports.
const clockTicks = 100

// CPUSeconds is the user+system CPU time a process has used.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces; fields
	// count from after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// Field 3 of the line (state) is f[0]: utime (14) and stime (15) are
	// f[11] and f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procstat: /proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// RSSKiB is a process's resident set size.
func RSSKiB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("procstat: /proc/%d/status has no VmRSS", pid)
}

// PinSelf moves every thread of this process to cpus (taskset -a).
func PinSelf(cpus string) error {
	out, err := exec.Command("taskset", "-a", "-c", "-p", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("procstat: taskset: %v: %s", err, out)
	}
	return nil
}
