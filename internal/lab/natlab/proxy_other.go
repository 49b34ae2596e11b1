//go:build !linux

package natlab

import (
	"context"
	"errors"
	"fmt"
)

// startProxyCell is only implemented on Linux, as the lab is.
func (l *Lab) startProxyCell(ctx context.Context, kinds []ProxyKind, relay Relay) (*proxyCell, error) {
	if isProxyOnly(l.A.Profile) || isProxyOnly(l.B.Profile) {
		return nil, fmt.Errorf("natlab: proxies: %w", errors.ErrUnsupported)
	}
	return nil, nil
}

// StartProxy is only implemented on Linux.
func (l *Lab) StartProxy(ctx context.Context, h Host, kind ProxyKind, pass string) (string, func(), error) {
	return "", nil, fmt.Errorf("natlab: proxies: %w", errors.ErrUnsupported)
}
