package trustproxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/icetcp/icetcp/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestListener: on one real listener, trusting 127.0.0.1 only, a trusted
// proxy's header renames its connection, a trusted connection without a
// header loses no byte, an untrusted peer's header is its own data (never
// an address), a bad header from a trusted proxy is refused, and a trusted
// proxy that sends nothing holds up nobody else.
func TestListener(t *testing.T) {
	raw, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	trusted, _ := ParseSet([]string{"127.0.0.1"})
	// The header deadline is far off: the silent proxy below must not be
	// refused while the test runs (the refusal count is checked), however
	// slowly it runs.
	l := Listen(raw, trusted, time.Hour, 0).(*Listener)
	defer l.Close()
	addr := l.Addr().String()
	ctx := context.Background()
	dial := func(src string, send []byte) net.Conn {
		t.Helper()
		c, err := testnet.DialFrom(ctx, src, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if len(send) > 0 {
			if _, err := c.Write(send); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	accept := func() net.Conn {
		t.Helper()
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	readN := func(c net.Conn, n int) []byte {
		t.Helper()
		b := make([]byte, n)
		c.SetReadDeadline(time.Now().Add(time.Minute)) // a bound for a hang, not a pace
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	payload := []byte("\x00\x01\x00\x00\x21\x12\xa4\x42 a STUN request")

	// A silent trusted proxy first: nobody waits for it.
	dial("127.0.0.1", nil)

	hdr := v2(t, "203.0.113.7:4000", "198.51.100.10:3478")
	dial("127.0.0.1", append(append([]byte(nil), hdr...), payload...))
	c := accept()
	if got := c.RemoteAddr().String(); got != "203.0.113.7:4000" {
		t.Fatalf("proxied connection from %s, want 203.0.113.7:4000", got)
	}
	if got := c.LocalAddr().String(); got != "198.51.100.10:3478" {
		t.Fatalf("proxied connection to %s", got)
	}
	if got := readN(c, len(payload)); !bytes.Equal(got, payload) {
		t.Fatalf("after the header: %q", got)
	}

	dial("127.0.0.2", append(append([]byte(nil), hdr...), payload...))
	c = accept()
	if ap := netip.MustParseAddrPort(c.RemoteAddr().String()); ap.Addr() != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("untrusted peer renamed to %s", ap)
	}
	if got := readN(c, len(hdr)); !bytes.Equal(got, hdr) {
		t.Fatal("an untrusted peer's header was consumed")
	}

	dial("127.0.0.1", payload)
	c = accept()
	if ap := netip.MustParseAddrPort(c.RemoteAddr().String()); ap.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("trusted connection without a header renamed to %s", ap)
	}
	if got := readN(c, len(payload)); !bytes.Equal(got, payload) {
		t.Fatalf("without a header: %q", got)
	}

	bad := append([]byte(nil), hdr...)
	bad[12] = 0x31 // version 3
	refusedBefore := refusedOf(l)
	bc := dial("127.0.0.1", bad)
	bc.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := bc.Read(make([]byte, 1)); err == nil {
		t.Fatal("a bad header's connection stayed open")
	}
	if refusedOf(l) != refusedBefore+1 {
		t.Fatalf("refusals %d, want %d", refusedOf(l), refusedBefore+1)
	}
	if p, _ := l.Stats(); p != 1 {
		t.Fatalf("%d proxied, want 1", p)
	}
}

func refusedOf(l *Listener) uint64 { _, r := l.Stats(); return r }

// TestListenerClose: Close ends Accept and the header readers (goleak
// checks the goroutines), with a trusted connection still silent.
func TestListenerClose(t *testing.T) {
	raw, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(raw, Set{netip.MustParsePrefix("127.0.0.0/8")}, time.Minute, 0)
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("Accept after Close returned a connection")
	}
	if same := Listen(raw, nil, 0, 0); same != raw {
		t.Fatal("nobody trusted: the listener should be returned as it is")
	}
}
