//go:build !linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Dir is where `ip netns add` mounts named namespaces.
const Dir = "/run/netns"

// Do is only implemented on Linux.
func Do(name string, fn func() error) error {
	return fmt.Errorf("netns: namespace %s: %w", name, errors.ErrUnsupported)
}

// OpenTUN is only implemented on Linux.
func OpenTUN(ns, ifname string) (*os.File, error) {
	return nil, fmt.Errorf("netns: tun %s in %s: %w", ifname, ns, errors.ErrUnsupported)
}

// Run is a lab run's prefix; only implemented on Linux.
type Run struct{ Prefix string }

// ValidPrefix is only implemented on Linux.
func ValidPrefix(p string) error { return errors.ErrUnsupported }

// NewRun is only implemented on Linux.
func NewRun(base, prefix string) (*Run, error) {
	return nil, fmt.Errorf("netns: %w", errors.ErrUnsupported)
}

// Release is a no-op.
func (r *Run) Release() {}

// Leftovers finds nothing outside Linux.
func Leftovers(base string) ([]string, error) { return nil, nil }

// Cleanup has nothing to do outside Linux.
func Cleanup(ctx context.Context, base string) error { return nil }

// Destroy is only implemented on Linux.
func Destroy(ctx context.Context, ns string) error {
	return fmt.Errorf("netns: %w", errors.ErrUnsupported)
}
