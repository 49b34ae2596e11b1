package coturn

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// A port that is taken by the time turnserver binds it (another process
// took it after we saw it free) costs a retry on another port, not a
// 15-second wait and a failed test.
func TestStartRetriesATakenPort(t *testing.T) {
	if !Installed() {
		if os.Getenv("CI") == "true" {
			t.Fatal("coturn: turnserver is not installed and CI=true forbids skipping (apt-get install coturn)")
		}
		t.Skip("coturn: turnserver not installed (apt-get install coturn); skipped")
	}
	takenPort := takePort(t)
	picks := 0
	cfg := Config{pickPort: func(ip netip.Addr) (uint16, error) {
		picks++
		if picks == 1 {
			return takenPort, nil
		}
		return freePort(ip)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start after a taken port: %v", err)
	}
	defer c.Stop()
	if picks != 2 || c.Addr().Port() == takenPort {
		t.Fatalf("%d picks, listening on %v (the taken port is %d)", picks, c.Addr(), takenPort)
	}
	conn, err := net.Dial("tcp", c.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	t.Logf("taken port %d, then %v, in %v", takenPort, c.Addr(), time.Since(start).Round(time.Millisecond))
}

// An explicit port that is taken is an error naming it.
func TestStartExplicitTakenPort(t *testing.T) {
	if !Installed() {
		if os.Getenv("CI") == "true" {
			t.Fatal("coturn: turnserver is not installed and CI=true forbids skipping (apt-get install coturn)")
		}
		t.Skip("coturn: turnserver not installed (apt-get install coturn); skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Start(ctx, Config{Port: takePort(t)})
	if err == nil {
		c.Stop()
		t.Fatal("Start on a taken port succeeded")
	}
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("Start on a taken port: %v, want errPortTaken", err)
	}
}

// takePort binds a TCP socket to a port of 127.0.0.1 without listening and
// without SO_REUSEADDR, as a relay's bound socket would hold it: binding it
// fails, connecting to it is refused.
func takePort(t *testing.T) uint16 {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return uint16(sa.(*syscall.SockaddrInet4).Port)
}
