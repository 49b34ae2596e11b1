package agent

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/internal/lab/memnet"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// A media server's session waits for its client however slow the client
// is: a passive-only agent behind a Mux has no pair of its own, so silence
// is no reason to give up; the client says when its checks are done
// (checks-done) or succeeds. Under load (10,000 sessions in one process
// beside busy loops) the server side used to fail after a check timeout of
// silence ("no candidate pair could be formed") while its client was still
// on its way, and then refused the client's connection.
func TestSyncMuxServerWaitsForSlowClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		muxAddr := netip.AddrPortFrom(ipB, 443)
		dials := 0
		n.Delay = func(key string) time.Duration {
			if strings.HasPrefix(key, "dial ") && strings.HasSuffix(key, muxAddr.String()+" #1") {
				if dials++; dials == 1 {
					// The client's first connect completes 15 s late on
					// its starved host: longer than the server's check
					// timeout, and than the Mux's first-message deadline,
					// which closes it; the client tries again.
					return 15 * time.Second
				}
			}
			return 0
		}
		l, err := n.Listen(context.Background(), muxAddr, false)
		if err != nil {
			t.Fatal(err)
		}
		mux, err := NewMux(l, MuxConfig{LoggerFactory: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		defer mux.Close()
		server := passiveOnly(memConfig(n, ipB, RoleControlled))
		server.Mux, server.Addrs = mux, nil
		server.CheckTimeout, server.ConnectTimeout = 10*time.Second, time.Minute
		client := activeOnly(memConfig(n, ipA, RoleControlling))
		client.CheckTimeout, client.ConnectTimeout = 30*time.Second, time.Minute
		chA, chB := signalingtest.Pair()
		x, y, errA, errB := connectPair(t, client, server, chA, chB)
		if errA != nil || errB != nil {
			t.Fatalf("client: %v; server: %v", errA, errB)
		}
		exchange(t, x, y, 4096)
	})
}

// Two agents that can form no pair at all (both active only) fail at once
// with ErrNoPairs, without waiting for each other.
func TestSyncNoPairsFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		ca, cb := activeOnly(memConfig(n, ipA, RoleAuto)), activeOnly(memConfig(n, ipB, RoleAuto))
		start := time.Now()
		_, _, errA, errB := connectPair(t, ca, cb, nil, nil)
		for _, err := range []error{errA, errB} {
			// One side finds it, the other may hear it first in a bye.
			if !errors.Is(err, ErrNoPairs) && !(errors.Is(err, ErrPeerLeft) && strings.Contains(err.Error(), "no candidate pair could be formed")) {
				t.Fatalf("want ErrNoPairs, got %v / %v", errA, errB)
			}
		}
		if el := time.Since(start); el > time.Second {
			t.Fatalf("failed after %v of virtual time, want at once", el)
		}
	})
}
