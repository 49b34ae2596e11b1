package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/internal/lab/memnet"
)

// eofWatch is a network whose listeners behave like pion's passive TCP
// candidate (tcp_mux.go, tcp_packet_conn.go): every accepted connection is
// read until its dialer closes it, whatever the listening agent does with
// it (its Close only stops its own reads), and each EOF counts: pion's
// candidate stops reading at the first.
type eofWatch struct {
	*memnet.Network
	mu       sync.Mutex
	accepted int
	eofs     int
}

func (w *eofWatch) Listen(ctx context.Context, addr netip.AddrPort, shared bool) (net.Listener, error) {
	l, err := w.Network.Listen(ctx, addr, shared)
	if err != nil {
		return nil, err
	}
	return &eofListener{Listener: l, w: w}, nil
}

func (w *eofWatch) counts() (accepted, eofs int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.accepted, w.eofs
}

type eofListener struct {
	net.Listener
	w *eofWatch
}

func (l *eofListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.w.mu.Lock()
	l.w.accepted++
	l.w.mu.Unlock()
	pr, pw := io.Pipe()
	go func() { // the peer's reader: it outlives the agent's interest
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				_, _ = pw.Write(buf[:n]) // fails once the agent closed its end: read on
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					l.w.mu.Lock()
					l.w.eofs++
					l.w.mu.Unlock()
				}
				pw.CloseWithError(err)
				c.Close()
				return
			}
		}
	}()
	return &eofConn{Conn: c, r: pr}, nil
}

// eofConn reads through the watcher's reader; Close ends only that.
type eofConn struct {
	net.Conn
	r *io.PipeReader
}

func (c *eofConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *eofConn) Close() error               { return c.r.Close() }

// Two hosts of ours check the peer's one passive candidate, and one pair
// is selected. Toward a standard agent the other connection stays open
// until the end (closeOrPark: pion's passive candidate stops reading when
// any of its connections ends, the CI's TestLabThirdPartyPublic/pion
// failure); toward an icetcp peer it is closed at once.
func TestSyncParkedToStandardPassive(t *testing.T) {
	for _, std := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			n := memnet.New()
			ipA2 := netip.MustParseAddr("10.0.0.3")
			w := &eofWatch{Network: n}
			ca := activeOnly(memConfig(n, ipA, RoleControlling))
			ca.Addrs = []netip.Addr{ipA, ipA2}
			// The better pair's connect is slow: the other one is checked
			// first, and the wait for a better pair lets both succeed.
			n.Delay = func(key string) time.Duration {
				if strings.HasPrefix(key, "dial "+ipA.String()+":") {
					return 100 * time.Millisecond
				}
				return 0
			}
			ca.NominationWait = 2 * time.Second
			cb := passiveOnly(memConfig(n, ipB, RoleControlled))
			cb.Network, cb.StandardOnly = w, std
			x, y := syncPair(t, ca, cb)
			time.Sleep(time.Minute) // past the release of listeners, through consent
			accepted, eofs := w.counts()
			if accepted < 2 {
				t.Fatalf("standard %v: the peer accepted %d connections; the test needs both hosts' checks", std, accepted)
			}
			if std && eofs != 0 {
				t.Fatalf("standard peer: %d of its %d accepted connections were closed by us while the session lived", eofs, accepted)
			}
			if !std && eofs != accepted-1 {
				t.Fatalf("icetcp peer: %d of the %d accepted connections closed, want all but the selected one", eofs, accepted)
			}
			exchange(t, x, y, 64<<10)
		})
	}
}
