//go:build !linux

package natlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
)

// startCoturn is only implemented on Linux, as the lab is.
func (l *Lab) startCoturn(ctx context.Context, ap netip.AddrPort, pass string) (stop func(), log func() string, err error) {
	return nil, nil, fmt.Errorf("natlab: coturn: %w", errors.ErrUnsupported)
}
