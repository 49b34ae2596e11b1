//go:build linux

package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Dir is where `ip netns add` mounts named namespaces.
const Dir = "/run/netns"

// Do runs fn on an OS thread that has joined the named network namespace.
// Sockets and TUN devices created by fn belong to that namespace for their
// whole life, and keep working from any thread after Do returns, because the
// kernel binds them to the namespace at creation time.
//
// fn must not start goroutines that expect to be in the namespace: only the
// calling goroutine's thread is switched. Blocking inside fn is fine: a
// goroutine locked to its thread resumes on that same thread.
func Do(name string, fn func() error) error {
	target, err := unix.Open(filepath.Join(Dir, name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netns: open namespace %s: %w", name, err)
	}
	defer unix.Close(target)

	runtime.LockOSThread()
	// The thread's own namespace, to come back to. thread-self, not self:
	// another thread of this process may be elsewhere right now.
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: open current namespace: %w", err)
	}
	defer unix.Close(orig)

	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		// setns failed, so the thread did not move: safe to hand it back.
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: setns %s: %w", name, err)
	}
	fnErr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// The thread is stuck in the lab namespace. Leave it locked: when
		// this goroutine exits the Go runtime destroys a locked thread
		// instead of reusing it for unrelated goroutines.
		return errors.Join(fnErr, fmt.Errorf("netns: restore namespace after %s: %w", name, err))
	}
	runtime.UnlockOSThread()
	return fnErr
}

// OpenTUN creates the TUN device ifname (IFF_TUN|IFF_NO_PI: bare IP packets,
// one per read/write) inside namespace ns and returns its file. The device
// is not persistent: closing the file removes it. The file is non-blocking
// and registered with the Go poller, so Close unblocks a pending Read.
func OpenTUN(ns, ifname string) (*os.File, error) {
	var f *os.File
	err := Do(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return fmt.Errorf("netns: open /dev/net/tun: %w", err)
		}
		req, err := unix.NewIfreq(ifname)
		if err != nil {
			unix.Close(fd)
			return fmt.Errorf("netns: tun name %q: %w", ifname, err)
		}
		req.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, req); err != nil {
			unix.Close(fd)
			return fmt.Errorf("netns: TUNSETIFF %s in %s: %w", ifname, ns, err)
		}
		f = os.NewFile(uintptr(fd), "tun:"+ns+"/"+ifname)
		return nil
	})
	return f, err
}
