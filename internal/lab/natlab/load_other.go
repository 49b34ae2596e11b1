//go:build !unix

package natlab

import (
	"errors"
	"fmt"
)

// Load is CPU load made on purpose; see load.go (Unix only).
type Load struct{}

// StartLoad needs a Unix shell; n ≤ 0 works everywhere.
func StartLoad(n int) (*Load, error) {
	if n > 0 {
		return nil, fmt.Errorf("natlab: load: %w", errors.ErrUnsupported)
	}
	return &Load{}, nil
}

// Pids are none.
func (l *Load) Pids() []int { return nil }

// Stop does nothing.
func (l *Load) Stop() error { return nil }
