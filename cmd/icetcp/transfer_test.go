//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/icetcp/icetcp/secure"
)

// sendRun is a running `icetcp send --json`.
type sendRun struct {
	cmd  *exec.Cmd
	code chan string
	mu   sync.Mutex
	err  bytes.Buffer // its stderr, as it comes
	done chan struct{}
}

func (s *sendRun) stderr() string {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err.String()
}

// startSend runs send in dir with --json and the given args; its code
// arrives on code.
func startSend(t *testing.T, ctx context.Context, srv serveInfo, dir string, args ...string) *sendRun {
	t.Helper()
	s := &sendRun{code: make(chan string, 1), done: make(chan struct{})}
	s.cmd = icetcp(ctx, append([]string{"send", "--json", "--signal", srv.url, "--addrs", "127.0.0.1", "--stun", srv.stun}, args...)...)
	s.cmd.Dir = dir
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.err.Write(sc.Bytes())
			s.err.WriteByte('\n')
			s.mu.Unlock()
			var ev struct{ Event, Code string }
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event == "code" {
				s.code <- ev.Code
			}
		}
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Signal(syscall.SIGCONT)
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	return s
}

func (s *sendRun) waitCode(t *testing.T, ctx context.Context) string {
	t.Helper()
	select {
	case c := <-s.code:
		return c
	case <-s.done:
		t.Fatalf("send ended without a code:\n%s", s.stderr())
	case <-ctx.Done():
		t.Fatal("no code from send")
	}
	return ""
}

// startReceive runs receive in dir with --json.
func startReceive(t *testing.T, ctx context.Context, srv serveInfo, dir string, args ...string) *peerRun {
	t.Helper()
	p := &peerRun{}
	p.cmd = icetcp(ctx, append([]string{"receive", "--json", "--signal", srv.url, "--addrs", "127.0.0.1", "--stun", srv.stun}, args...)...)
	p.cmd.Dir = dir
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// noFailed checks that a --json run wrote no failed event and ended with
// a verified done.
func noFailed(t *testing.T, who, stderr string) map[string]any {
	t.Helper()
	var done map[string]any
	for _, ev := range events(t, stderr) {
		switch ev["event"] {
		case "failed":
			t.Errorf("%s: failed event %v", who, ev)
		case "done":
			done = ev
		}
	}
	if done == nil || done["verified"] != true {
		t.Fatalf("%s: no verified done event:\n%s", who, stderr)
	}
	return done
}

func transferSetup(t *testing.T, serveFlags ...string) (context.Context, serveInfo, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	srv := startServeWith(t, ctx, serveFlags...)
	return ctx, srv, t.TempDir(), t.TempDir()
}

// 64 MiB from send to receive with --json: both exit 0, the file is the
// same, neither wrote a failed event.
func TestSendReceive64MiB(t *testing.T) {
	ctx, srv, from, to := transferSetup(t)
	sum := randomFile(t, filepath.Join(from, "data.bin"), 64<<20)
	s := startSend(t, ctx, srv, from, "data.bin")
	r := startReceive(t, ctx, srv, to, s.waitCode(t, ctx))
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("receive: %v\n%s", err, r.stderr.String())
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("send: %v\n%s", err, s.stderr())
	}
	if fileSum(t, filepath.Join(to, "data.bin")) != sum {
		t.Fatal("the received file differs")
	}
	done := noFailed(t, "receive", r.stderr.String())
	noFailed(t, "send", s.stderr())
	if done["size"] != float64(64<<20) || done["path"] == nil {
		t.Errorf("receive's done event: %v", done)
	}
	if left, _ := filepath.Glob(filepath.Join(to, ".*.part")); len(left) > 0 {
		t.Errorf("partial files left: %v", left)
	}
}

// A directory with subdirectories, an empty one and an empty file arrives
// as the same tree.
func TestSendReceiveDirectory(t *testing.T) {
	ctx, srv, from, to := transferSetup(t)
	tree := map[string]string{"tree/a.txt": "alpha", "tree/sub/b.txt": strings.Repeat("b", 100000), "tree/sub/deeper/c": "", "tree/empty/": ""}
	for name, content := range tree {
		p := filepath.Join(from, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	s := startSend(t, ctx, srv, from, "tree")
	r := startReceive(t, ctx, srv, to, s.waitCode(t, ctx))
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("receive: %v\n%s", err, r.stderr.String())
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("send: %v\n%s", err, s.stderr())
	}
	for name, content := range tree {
		p := filepath.Join(to, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.HasSuffix(name, "/") {
			if !fi.IsDir() {
				t.Errorf("%s is not a directory", name)
			}
			continue
		}
		if b, _ := os.ReadFile(p); string(b) != content || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %d bytes, mode %v", name, len(b), fi.Mode().Perm())
		}
	}
}

// A file of the same name is not overwritten without --force: the receiver
// refuses, the sender is told, both exit non-zero, the file is untouched.
func TestReceiveRefusesOverwrite(t *testing.T) {
	ctx, srv, from, to := transferSetup(t)
	randomFile(t, filepath.Join(from, "data.bin"), 1<<20)
	if err := os.WriteFile(filepath.Join(to, "data.bin"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startSend(t, ctx, srv, from, "data.bin")
	r := startReceive(t, ctx, srv, to, s.waitCode(t, ctx))
	if exitCode(r.cmd.Wait()) == 0 || !strings.Contains(r.stderr.String(), "exists") {
		t.Fatalf("receive over an existing file:\n%s", r.stderr.String())
	}
	if exitCode(s.cmd.Wait()) == 0 || !strings.Contains(s.stderr(), "refused") {
		t.Fatalf("send to a receiver that refused:\n%s", s.stderr())
	}
	if b, _ := os.ReadFile(filepath.Join(to, "data.bin")); string(b) != "mine" {
		t.Fatalf("the existing file changed: %q", b)
	}
}

// waitPartial polls dir for the receiver's partial file until it holds at
// least n bytes, and returns its name.
func waitPartial(t *testing.T, ctx context.Context, dir string, n int64) string {
	t.Helper()
	for {
		parts, _ := filepath.Glob(filepath.Join(dir, ".*.part"))
		for _, p := range parts {
			if fi, err := os.Stat(p); err == nil && fi.Size() >= n {
				return p
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no partial file of %d bytes in %s", n, dir)
		case <-time.After(time.Millisecond):
		}
	}
}

// The receiver is killed (SIGKILL) midway: send waits for it, and a second
// receive with the same code goes on from the bytes on disk and verifies
// the whole file. The sender is stopped (SIGSTOP) while the receiver is
// killed, so that the kill lands mid-transfer however fast the machine.
func TestReceiveResumesAfterKill(t *testing.T) {
	ctx, srv, from, to := transferSetup(t)
	const size = 64 << 20
	sum := randomFile(t, filepath.Join(from, "data.bin"), size)
	s := startSend(t, ctx, srv, from, "data.bin")
	code := s.waitCode(t, ctx)
	r := startReceive(t, ctx, srv, to, code)
	partial := waitPartial(t, ctx, to, 1<<20)
	s.cmd.Process.Signal(syscall.SIGSTOP)
	r.cmd.Process.Kill()
	r.cmd.Wait()
	s.cmd.Process.Signal(syscall.SIGCONT)
	fi, err := os.Stat(partial)
	if err != nil || fi.Size() == 0 || fi.Size() >= size {
		t.Fatalf("partial file after the kill: %v, %v", fi, err)
	}
	r2 := startReceive(t, ctx, srv, to, code)
	if err := r2.cmd.Wait(); err != nil {
		t.Fatalf("second receive: %v\n%s\nsend:\n%s", err, r2.stderr.String(), s.stderr())
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("send: %v\n%s", err, s.stderr())
	}
	if fileSum(t, filepath.Join(to, "data.bin")) != sum {
		t.Fatal("the resumed file differs")
	}
	done := noFailed(t, "second receive", r2.stderr.String())
	if at, _ := done["resumed_at"].(float64); at <= 0 || at > float64(fi.Size()) {
		t.Errorf("resumed at %v, want the partial file's %d bytes or fewer", done["resumed_at"], fi.Size())
	}
	if !strings.Contains(s.stderr(), "vanished") {
		t.Errorf("send did not say the receiver vanished:\n%s", s.stderr())
	}
}

// SIGINT mid-transfer: the receiver exits 130 at once; the sender exits
// non-zero and says it was interrupted by the peer.
func TestReceiveSIGINTMidTransfer(t *testing.T) {
	ctx, srv, from, to := transferSetup(t)
	randomFile(t, filepath.Join(from, "data.bin"), 64<<20)
	s := startSend(t, ctx, srv, from, "data.bin")
	r := startReceive(t, ctx, srv, to, s.waitCode(t, ctx))
	waitPartial(t, ctx, to, 1<<20)
	s.cmd.Process.Signal(syscall.SIGSTOP) // the transfer is mid-way, whatever the machine's speed
	start := time.Now()
	r.cmd.Process.Signal(syscall.SIGINT)
	code := exitCode(r.cmd.Wait())
	took := time.Since(start)
	s.cmd.Process.Signal(syscall.SIGCONT)
	if code != 130 {
		t.Fatalf("receive after SIGINT: exit %d\n%s", code, r.stderr.String())
	}
	// Measured, not a limit: the abort waits at most 500 ms for the
	// peer's FIN, and this peer is stopped.
	t.Logf("receive exited %v after SIGINT", took)
	if took > 10*time.Second {
		t.Errorf("receive took %v to exit after SIGINT", took)
	}
	if exitCode(s.cmd.Wait()) == 0 || !strings.Contains(s.stderr(), "interrupted") {
		t.Fatalf("send after its receiver's SIGINT:\n%s", s.stderr())
	}
}

// Bad input is a usage error (exit 2) before anything starts, said once.
func TestTransferUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"send", "--signal", "ws://127.0.0.1:1", "--turn", "turn://relay:3478", "--turn-user", "u", "--turn-pass", "p", "x"}, "TURN URIs have no"},
		{[]string{"receive", "--signal", "ws://127.0.0.1:1", "--turn", "turn:relay?transport=udp", "--turn-user", "u", "--turn-pass", "p", "7-acid-canal-ozone"}, "relays TCP only"},
		{[]string{"connect", "--signal", "ws://127.0.0.1:1", "--room", "r", "--turn", "turn:relay:99999", "--turn-user", "u", "--turn-pass", "p"}, "port"},
		{[]string{"receive", "--signal", "ws://127.0.0.1:1", "7-acid-canl-ozone"}, `did you mean "canal"`},
		{[]string{"receive", "--signal", "http://127.0.0.1:1", "7-acid-canal-ozone"}, "ws://HOST:PORT"},
		{[]string{"send", "--signal", "ws://127.0.0.1:1", "--stun", "nohost", "x"}, "--stun"},
		{[]string{"send", "--signal", "ws://127.0.0.1:1", "/does/not/exist"}, "no such file"},
		{[]string{"receive", "7-acid-canal-ozone"}, "--signal is required"},
	} {
		var out, errb bytes.Buffer
		start := time.Now()
		code := run(tc.args, nil, &out, &errb)
		if code != 2 || strings.Count(errb.String(), tc.want) != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q once", tc.args, code, errb.String(), tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%v took %v: the check is not up front", tc.args, d)
		}
	}
}

// What the wait is for: a receiver alone in the room of its code says it
// waits for the sender and gives up after --timeout with "did not join";
// a third peer in a busy room is told so at once.
func TestTransferWaitsSayWhy(t *testing.T) {
	ctx, srv, _, to := transferSetup(t, "--metrics-addr", "127.0.0.1:0")
	code := secure.NewCode().String()
	alone := startReceive(t, ctx, srv, to, "--timeout", "1s", code)
	if exitCode(alone.cmd.Wait()) != 1 {
		t.Fatalf("lonely receive:\n%s", alone.stderr.String())
	}
	var waiting, failed bool
	for _, ev := range events(t, alone.stderr.String()) {
		waiting = waiting || ev["event"] == "waiting"
		if ev["event"] == "failed" {
			failed = strings.Contains(ev["reason"].(string), "did not join within 1s")
		}
	}
	if !waiting || !failed {
		t.Fatalf("want a waiting event and a failure saying the peer did not join:\n%s", alone.stderr.String())
	}

	// Two receivers of one code wait in its room; a third finds it busy.
	a := startReceive(t, ctx, srv, to, code)
	b := startReceive(t, ctx, srv, to, code)
	waitMetric(t, ctx, srv.metrics, "icetcp_signal_joins_total", 3) // the lonely one, then these two
	third := startReceive(t, ctx, srv, to, code)
	if exitCode(third.cmd.Wait()) != 1 || !strings.Contains(third.stderr.String(), "room busy") {
		t.Fatalf("third receive:\n%s", third.stderr.String())
	}
	a.cmd.Process.Kill()
	b.cmd.Process.Kill()
}

// FuzzDecodeHeader: whatever a sender announces, decodeHeader neither
// panics nor accepts a name that could leave the receiver's directory, a
// negative size or a hash that is not SHA-256's.
func FuzzDecodeHeader(f *testing.F) {
	f.Add([]byte(`{"v":1,"kind":"file","name":"a.bin","size":5,"sha256":"` + strings.Repeat("ab", 32) + `","mode":420}`))
	f.Add([]byte(`{"v":1,"kind":"tar","name":"d","size":1024,"sha256":"` + strings.Repeat("00", 32) + `","names":["d"]}`))
	f.Add([]byte(`{"v":1,"kind":"file","name":"../etc/passwd","size":1,"sha256":"x"}`))
	f.Add([]byte(`{"v":1,"kind":"tar","names":["a","a"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHeader(b)
		if err != nil {
			return
		}
		names := append([]string{h.Name}, h.Names...)
		for _, n := range names {
			if n == "" && h.Kind == kindTar {
				continue
			}
			if n != filepath.Base(n) || n == "." || n == ".." || strings.ContainsAny(n, `/\`) || !filepath.IsLocal(n) {
				t.Fatalf("accepted name %q", n)
			}
		}
		if h.Size < 0 || len(h.SHA256) != 64 || (h.Kind != kindFile && h.Kind != kindTar) {
			t.Fatalf("accepted %+v", h)
		}
	})
}
