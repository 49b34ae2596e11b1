package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sigrendezvous "github.com/icetcp/icetcp/signaling/rendezvous" // this file's helper is called rendezvous
)

// icetcpBinary builds cmd/icetcp once per test run.
var icetcpBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "icetcp-interop-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "icetcp")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/icetcp/icetcp/cmd/icetcp").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/icetcp: %w\n%s", err, out)
	}
	return bin, nil
})

func buildIcetcp(t *testing.T) string {
	t.Helper()
	bin, err := icetcpBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// rendezvous serves a rendezvous.Server on loopback for one test.
func rendezvous(t *testing.T) string {
	t.Helper()
	sig := &sigrendezvous.Server{}
	srv := httptest.NewServer(sig)
	t.Cleanup(func() {
		sig.Close()
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// cliRun is one finished `icetcp connect`.
type cliRun struct {
	exit   int
	stdout []byte
	stderr string
	events []map[string]any
}

func (r cliRun) event(name string) map[string]any {
	for _, e := range r.events {
		if e["event"] == name {
			return e
		}
	}
	return nil
}

// runConnect runs `icetcp connect` against p in a fresh room with stdin.
func runConnect(t *testing.T, p *Peer, stdin []byte, extra ...string) cliRun {
	return runConnectTo(t, p, stdin, nil, extra...)
}

// watchBuffer is a process's stdout that a test can wait on.
type watchBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	more chan struct{} // capacity 1
}

func newWatchBuffer() *watchBuffer { return &watchBuffer{more: make(chan struct{}, 1)} }

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.b.Write(p)
	select {
	case w.more <- struct{}{}:
	default:
	}
	return n, err
}

func (w *watchBuffer) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.b.Bytes()...)
}

// wait returns when n bytes have been written, or ctx ends.
func (w *watchBuffer) wait(ctx context.Context, n int) {
	for len(w.Bytes()) < n {
		select {
		case <-w.more:
		case <-ctx.Done():
			return
		}
	}
}

// runConnectTo is runConnect with stdout going to out (nil: a buffer).
func runConnectTo(t *testing.T, p *Peer, stdin []byte, out *watchBuffer, extra ...string) cliRun {
	t.Helper()
	bin := buildIcetcp(t)
	url := rendezvous(t)
	room := "interop-" + strings.ReplaceAll(t.Name(), "/", "-")
	room = strings.Map(func(r rune) rune {
		if strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", r) {
			return r
		}
		return '_'
	}, room)
	if len(room) > 100 {
		room = room[:100]
	}
	p.JoinRoomT(t, url, room)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"connect", "--signal", url, "--room", room, "--addrs", "127.0.0.1", "--json", "--timeout", "30s"}, extra...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "ICETCP_LOG=debug")
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	if out == nil {
		out = newWatchBuffer()
	}
	cmd.Stdout, cmd.Stderr = out, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := cliRun{stdout: out.Bytes(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	default:
		t.Fatalf("icetcp connect: %v", err)
	}
	for _, line := range strings.Split(r.stderr, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil {
			r.events = append(r.events, e)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("icetcp connect exit %d, stderr:\n%s", r.exit, r.stderr)
		}
	})
	return r
}

// closeAfter makes p close its connection once it has received want
// bytes (or its read side ended) and sent everything: these agents cannot
// half-close, so closing is how they end their stream.
//
// pion/ice v2 loses what it had not yet written to its socket when it
// closes right after its last Write (seen on the wire: 3 of 8 frames, then
// its FIN), so for pion the test also waits until the bytes came out of
// icetcp (delivered, when out is not nil) before closing it: otherwise the
// test would measure pion's loss, not ours.
func closeAfter(t *testing.T, p *Peer, want, sending int, delivered *watchBuffer) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.WaitReceived(ctx, want)
		p.WaitSent(ctx, sending)
		if delivered != nil {
			delivered.wait(ctx, sending)
		}
		p.Close()
	}()
	t.Cleanup(func() {
		p.Stop()
		<-done
	})
}

// TestCLIShortAndEmptyStdin is finding 1 on the real CLI: `icetcp connect`
// with a few bytes (or nothing) on stdin half-closes right after
// selection, while the third-party peer sends 64 KiB and then closes. The
// peer's bytes must come out on stdout and ours must reach the peer; and
// whatever happens, the CLI must not exit 0 having lost the peer's data.
func TestCLIShortAndEmptyStdin(t *testing.T) {
	for _, kind := range []string{"libnice", "pion"} {
		for _, tc := range []struct {
			controlling bool
			stdin       []byte
		}{
			{false, []byte("hello from icetcp connect\n")},
			{false, nil},
			{true, []byte("hello from icetcp connect\n")},
			{true, nil},
		} {
			name := fmt.Sprintf("%s controlling=%v stdin=%d bytes", kind, tc.controlling, len(tc.stdin))
			t.Run(name, func(t *testing.T) {
				var p *Peer
				if kind == "libnice" {
					p = StartLibnice(t, Options{Controlling: tc.controlling, Debug: true})
				} else {
					p = StartPion(t, Options{Controlling: tc.controlling, Debug: true})
				}
				fromPeer := randomBytes(t, 64<<10)
				p.Send(fromPeer)
				out := newWatchBuffer()
				var delivered *watchBuffer
				if kind == "pion" {
					delivered = out
				}
				closeAfter(t, p, len(tc.stdin), len(fromPeer), delivered)
				r := runConnectTo(t, p, tc.stdin, out)
				lost := !bytes.Equal(r.stdout, fromPeer)
				if lost {
					t.Errorf("stdout has %s, %s sent %s; %s states %v", sum(r.stdout), kind, sum(fromPeer), kind, p.States())
				}
				if lost && r.exit == 0 {
					t.Errorf("icetcp connect exited 0 although the peer's data was lost (selected: %v)", r.event("selected") != nil)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if len(tc.stdin) > 0 {
					if got, err := p.WaitReceived(ctx, len(tc.stdin)); err != nil || !bytes.Equal(got, tc.stdin) {
						t.Errorf("%s received %q (%v), want %q", kind, got, err, tc.stdin)
					}
				}
			})
		}
	}
}
