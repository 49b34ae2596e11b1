//go:build linux

package natlab

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"

	"github.com/icetcp/icetcp/internal/lab/coturn"
)

// startCoturn runs turnserver in the server namespace on ap (TCP only, no
// TLS) with the lab's long-term user; stop kills it (the namespace goes
// next, so coturn's two-second SIGTERM exit would only cost time), log is
// what it printed.
func (l *Lab) startCoturn(ctx context.Context, ap netip.AddrPort, pass string) (stop func(), log func() string, err error) {
	if !coturn.Installed() {
		return nil, nil, coturn.ErrNotInstalled
	}
	c, err := coturn.Start(ctx, coturn.Config{
		ListenIP: ap.Addr(), Port: ap.Port(), Users: map[string]string{turnUser: pass},
		Wrap: func(name string, args ...string) *exec.Cmd { return l.Command(ctx, l.Server, name, args...) },
	})
	if err != nil {
		return nil, nil, fmt.Errorf("natlab: %w", err)
	}
	return c.Kill, c.Log, nil
}
