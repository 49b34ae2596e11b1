//go:build !linux

package natlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"time"
)

func setProcAttr(cmd *exec.Cmd) {}

// New is only implemented on Linux: the lab needs network namespaces,
// nftables and TUN devices.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	return nil, fmt.Errorf("natlab: the NAT lab needs Linux: %w", errors.ErrUnsupported)
}

// ProbeTCP is only implemented on Linux.
func (l *Lab) ProbeTCP(ctx context.Context, h Host, remote netip.AddrPort, timeout time.Duration) (Reach, error) {
	return Failed, fmt.Errorf("natlab: %w", errors.ErrUnsupported)
}

// noise exists only on Linux.
type noise struct{}

func (l *Lab) stopNoise() {}
