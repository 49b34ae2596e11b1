package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/testnet"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// TestMuxManyAgents connects 200 agent pairs at once in one process; every
// server-side agent's only passive candidate is one shared port.
func TestMuxManyAgents(t *testing.T) {
	const n = 200
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Every client comes from 127.0.0.1 here, all at once.
	mux, err := NewMux(l, MuxConfig{LoggerFactory: testLogger(), MaxPendingPerSource: n})
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- oneMuxSession(ctx, mux, i)
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d sessions failed", failed, n)
	}
}

func oneMuxSession(ctx context.Context, mux *Mux, i int) error {
	srvCfg := passiveOnly(baseConfig(RoleControlled))
	srvCfg.Mux = mux
	srvCfg.ConnectTimeout = 50 * time.Second
	cliCfg := activeOnly(baseConfig(RoleControlling))
	cliCfg.ConnectTimeout = 50 * time.Second
	srv, err := New(srvCfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	cli, err := New(cliCfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	chS, chC := signalingtest.Pair()
	defer chS.Close()
	defer chC.Close()
	rs := connectLater(ctx, srv, chS)
	cc, err := cli.Connect(ctx, chC)
	if err != nil {
		return fmt.Errorf("session %d client: %w", i, err)
	}
	r := <-rs
	if r.err != nil {
		return fmt.Errorf("session %d server: %w", i, r.err)
	}
	if r.conn.Local().Addr != mux.Addr() || addrPortOf(r.conn.LocalAddr()) != mux.Addr() {
		return fmt.Errorf("session %d: server side is on %v, not the shared port %v", i, r.conn.LocalAddr(), mux.Addr())
	}
	// an echo round trip proves each session reached its own agent
	msg := []byte(fmt.Sprintf("session %d says hello", i))
	go func() { io.Copy(r.conn, io.LimitReader(r.conn, int64(len(msg)))) }()
	if _, err := cc.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	cc.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(cc, got); err != nil || !bytes.Equal(got, msg) {
		return fmt.Errorf("session %d echo: %q %v", i, got, err)
	}
	return nil
}

// TestMuxRejectsStrangers: garbage, silence and unknown ufrags are closed,
// and the mux keeps serving.
func TestMuxRejectsStrangers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux, err := NewMux(l, MuxConfig{LoggerFactory: testLogger(), FirstMessageTimeout: 300 * time.Millisecond, MaxPending: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	closedSoon := func(name string, send []byte) {
		c, err := net.Dial("tcp", mux.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(send)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s: mux answered instead of closing", name)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("%s: connection not closed", name)
		}
	}
	closedSoon("garbage", []byte("\x00\x05hello"))
	closedSoon("silence", nil)
	m, _ := buildRequest(checkParams{localUfrag: "x", remoteUfrag: "nobody", remotePwd: "0123456789012345678901", tiebreaker: 1}, [12]byte{2})
	frame := append([]byte{byte(len(m.Raw) >> 8), byte(len(m.Raw))}, m.Raw...)
	closedSoon("unknown ufrag", frame)
	// still serving
	srvCfg := passiveOnly(baseConfig(RoleControlled))
	srvCfg.Mux = mux
	x, y := mustConnect(t, srvCfg, activeOnly(baseConfig(RoleControlling)))
	exchange(t, x, y, 4096)
}

// dialFrom opens a TCP connection to addr from the loopback address src
// (127.0.0.0/8 is all ours, so each address is a distinct source).
func dialFrom(src, addr string) (net.Conn, error) {
	return testnet.Dialer(src).Dial("tcp", addr)
}

// The attack found in review: one source holds 1,100 silent connections to
// the shared port and refills them. It is capped per source, and a session
// from another source connects as usual.
func TestMuxSilentFloodFromOneSource(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux, err := NewMux(l, MuxConfig{LoggerFactory: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range 1100 {
		c, err := dialFrom("127.0.0.2", mux.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	// Wait until the Mux has dealt with them all (accept is asynchronous).
	for deadline := time.Now().Add(10 * time.Second); ; {
		st := mux.Stats()
		if uint64(st.Pending)+st.RefusedSource+st.RefusedPending >= 1100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mux dealt with only part of 1100: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	st := mux.Stats()
	if st.Pending > 64 || st.RefusedSource < 1100-64 {
		t.Fatalf("one source holds %d pending connections (refused %d): not capped", st.Pending, st.RefusedSource)
	}
	srvCfg := passiveOnly(baseConfig(RoleControlled))
	srvCfg.Mux = mux
	cliCfg := activeOnly(baseConfig(RoleControlling))
	cliCfg.Addrs = []netip.Addr{netip.MustParseAddr("127.0.0.3")}
	x, y := mustConnect(t, srvCfg, cliCfg)
	exchange(t, x, y, 4096)
}

// MaxPending bounds silent connections in total; they are freed by the
// first-message deadline, after which the Mux serves again.
func TestMuxMaxPending(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux, err := NewMux(l, MuxConfig{LoggerFactory: testLogger(), MaxPending: 8, FirstMessageTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	var silent []net.Conn
	for i := range 12 {
		c, err := dialFrom(fmt.Sprintf("127.0.1.%d", i+1), mux.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		silent = append(silent, c)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		st := mux.Stats()
		if uint64(st.Pending)+st.RefusedPending >= 12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections not dealt with: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := mux.Stats(); st.RefusedPending != 4 {
		t.Fatalf("refused %d over MaxPending 8 of 12, want 4 (%+v)", st.RefusedPending, st)
	}
	// Each silent connection is closed by the deadline.
	for _, c := range silent {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a silent connection got data")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("a silent connection outlived the first-message deadline")
		}
	}
	if st := mux.Stats(); st.RefusedFirstMessage != 8 || st.Pending != 0 {
		t.Fatalf("after the deadline: %+v", st)
	}
	srvCfg := passiveOnly(baseConfig(RoleControlled))
	srvCfg.Mux = mux
	x, y := mustConnect(t, srvCfg, activeOnly(baseConfig(RoleControlling)))
	exchange(t, x, y, 4096)
}
