//go:build linux

package natlab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// procState reads a process's state letter ("R" running or runnable, "S"
// sleeping, ...) and process group from /proc/PID/stat.
func procState(pid int) (state string, pgrp int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, err
	}
	// pid (comm) state ppid pgrp ...: comm may hold spaces, so cut after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 3 {
		return "", 0, fmt.Errorf("short stat %q", s)
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0], pgrp, err
}

// waitGone waits until pid has exited, on a pidfd (no polling), at most 10 s.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return
	}
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 10_000)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("busy process %d still alive 10 s later", pid)
		}
		return
	}
}

// TestLoadStartsAndStops: StartLoad's processes run, each in its own
// group, until Stop, which leaves nothing behind.
func TestLoadStartsAndStops(t *testing.T) {
	l, err := StartLoad(2)
	if err != nil {
		t.Fatal(err)
	}
	pids := l.Pids()
	if len(pids) != 2 {
		t.Fatalf("pids %v, want 2", pids)
	}
	for _, pid := range pids {
		_, pgrp, err := procState(pid)
		if err != nil {
			t.Fatal(err)
		}
		if pgrp != pid {
			t.Errorf("busy process %d in group %d, want its own", pid, pgrp)
		}
	}
	if err := l.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := l.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("busy process %d after Stop: %v", pid, err)
		}
	}
	if none, err := StartLoad(0); err != nil || len(none.Pids()) != 0 || none.Stop() != nil {
		t.Errorf("StartLoad(0): %v", err)
	}
}

// TestLoadEndsWithItsProcess: a process that started a load and dies
// without stopping it (SIGKILL, at once: possibly before the busy shell
// began) leaves no busy process behind. (A first version that watched
// $PPID spun forever when its parent died before the shell read it: $PPID
// was then 1.)
func TestLoadEndsWithItsProcess(t *testing.T) {
	if os.Getenv("NATLAB_LOAD_HELPER") == "1" {
		l, err := StartLoad(1)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(l.Pids()[0])
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadEndsWithItsProcess$")
	cmd.Env = append(os.Environ(), "NATLAB_LOAD_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q %v", line, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q", line)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("helper ended with %v, want killed", err)
	}
	waitGone(t, pid)
}
