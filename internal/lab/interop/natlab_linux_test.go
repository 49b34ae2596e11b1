//go:build linux

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/natlab"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// TestLabThirdPartyPublic runs libnice and pion on the public side of the
// NAT lab and `icetcp connect` behind each NAT profile: the path is
// icetcp's active candidate (through its NAT) to the peer's passive one.
// One trial per cell keeps the CI cost small. The peer sends 64 KiB and
// icetcp 4 KiB (written to stdin at once, so the CLI sends frames below
// pion's 8,192-byte limit, finding 2); the CLI's stdin stays open until the
// peer is connected, has icetcp's bytes and has written its own, so that a
// half-close (finding 1) does not decide this test: it is about the path.
func TestLabThirdPartyPublic(t *testing.T) {
	if os.Geteuid() != 0 {
		requireTool(t, errors.New("the NAT lab needs root (namespaces, nftables, TUN)"))
	}
	bin := buildIcetcp(t)
	// tcp443-only lets nothing out but TCP 443, and neither libnice nor pion
	// can put a passive candidate on port 443.
	profiles := []string{"preserve-rst", "preserve-drop", "eim-remap", "symmetric", "no-simopen", "udp-blocked"}
	for _, kind := range []string{"libnice", "pion"} {
		for _, profile := range profiles {
			t.Run(kind+"/"+profile, func(t *testing.T) {
				if kind == "libnice" {
					requireTool(t, LibniceAvailable())
				}
				labTrial(t, bin, kind, profile)
			})
		}
	}
}

func labTrial(t *testing.T, bin, kind, profile string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lab, err := natlab.New(ctx, natlab.Config{A: profile, B: "public"})
	if err != nil {
		t.Fatal(err)
	}
	stop := lab.CloseOnSignal()
	t.Cleanup(func() {
		stop()
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	sig := netip.AddrPortFrom(natlab.ServerAddr, 8080)
	stun := netip.AddrPortFrom(natlab.ServerAddr, 3478)
	serve := lab.Command(ctx, lab.Server, bin, "serve", "--signal-addr", sig.String(), "--stun-addr", stun.String())
	var serveOut bytes.Buffer
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		serve.Process.Signal(os.Interrupt)
		serve.Wait()
	})
	for _, ap := range []netip.AddrPort{sig, stun} {
		deadline := time.Now().Add(15 * time.Second)
		for {
			if r, _ := lab.ProbeTCP(ctx, lab.Server, ap, time.Second); r == natlab.Connected {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("icetcp serve not accepting on %s: %s", ap, serveOut.String())
			}
			time.Sleep(50 * time.Millisecond) // polling an external process, not synchronising
		}
	}

	opts := Options{Addr: lab.B.Addr, Debug: true, Wrap: func(name string, args ...string) *exec.Cmd {
		return lab.Command(ctx, lab.B, name, args...)
	}}
	var p *Peer
	if kind == "libnice" {
		p, err = NewLibnice(ctx, opts)
	} else {
		p, err = NewPionProcess(ctx, opts)
	}
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	toPeer, fromPeer := randomBytes(t, 4<<10), randomBytes(t, 64<<10)
	p.Send(fromPeer)
	dialer := &wsclient.Dialer{HTTPClient: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(addr)
			if err != nil {
				return nil, err
			}
			return lab.Dial(ctx, lab.B, 0, ap)
		},
	}}}
	room := fmt.Sprintf("lab-%s-%s", kind, profile)
	url := "ws://" + sig.String()
	if err := p.JoinRoom(ctx, dialer, url, room); err != nil {
		t.Fatal(err)
	}

	cmd := lab.Command(ctx, lab.A, bin, "connect", "--signal", url, "--room", room, "--stun", stun.String(), "--json", "--timeout", "40s")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdoutPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "ICETCP_LOG=debug")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	allOut := make(chan struct{}) // closed once stdout has the peer's bytes
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		buf := make([]byte, 32<<10)
		signalled := false
		for {
			n, err := stdoutPipe.Read(buf)
			stdout.Write(buf[:n])
			if stdout.Len() >= len(fromPeer) && !signalled {
				close(allOut)
				signalled = true
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		stdin.Write(toPeer)
		// End both sides only once each has the other's bytes (see
		// above): the peer closes (these agents cannot half-close; a
		// close with unread bytes in its socket would be an RST), then
		// icetcp's stdin ends.
		p.WaitState(ctx, StateConnected)
		p.WaitReceived(ctx, len(toPeer))
		p.WaitSent(ctx, len(fromPeer))
		select {
		case <-allOut:
		case <-ctx.Done():
		}
		p.Close()
		stdin.Close()
	}()
	<-copied
	runErr := cmd.Wait()
	defer func() {
		if t.Failed() {
			t.Logf("icetcp connect (%v) stderr:\n%s", runErr, stderr.String())
		}
	}()
	var selected map[string]any
	for _, line := range strings.Split(stderr.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil && e["event"] == "selected" {
			selected = e
		}
	}
	if selected == nil {
		t.Fatalf("icetcp behind %s did not connect to %s on the public side (%v)", profile, kind, runErr)
	}
	t.Logf("%s: %v ms, %s -> %s", profile, selected["connect_ms"], selected["local"], selected["remote"])
	if !bytes.Equal(stdout.Bytes(), fromPeer) {
		t.Errorf("icetcp received %s, %s sent %s", sum(stdout.Bytes()), kind, sum(fromPeer))
	}
	if got := p.Received(); !bytes.Equal(got, toPeer) {
		t.Errorf("%s received %s, icetcp sent %s", kind, sum(got), sum(toPeer))
	}
	if runErr != nil {
		// The peer's close may come as an RST (consent or check bytes
		// unread in its socket); the data above is what this test is about.
		t.Logf("icetcp connect ended with %v after receiving everything", runErr)
	}
}
