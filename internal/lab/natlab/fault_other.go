//go:build !linux

package natlab

import (
	"context"
	"errors"
	"fmt"
)

// BlockPeers is only implemented on Linux, as the lab is.
func (l *Lab) BlockPeers(ctx context.Context) (func(context.Context) error, error) {
	return nil, fmt.Errorf("natlab: %w", errors.ErrUnsupported)
}

// RestartNAT is only implemented on Linux.
func (l *Lab) RestartNAT(ctx context.Context, gw Host) error {
	return fmt.Errorf("natlab: %w", errors.ErrUnsupported)
}
