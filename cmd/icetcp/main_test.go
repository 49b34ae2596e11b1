package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"go.uber.org/goleak"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the icetcp binary: with ICETCP_MAIN=1 it runs
// main, so the tests drive real separate processes.
func TestMain(m *testing.M) {
	if os.Getenv("ICETCP_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func icetcp(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "ICETCP_MAIN=1")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// startServe runs `icetcp serve` on loopback ports and returns the
// rendezvous URL and STUN address it printed.
func startServe(t *testing.T, ctx context.Context) (url, stun string) {
	t.Helper()
	s := startServeWith(t, ctx)
	return s.url, s.stun
}

type peerRun struct {
	cmd    *exec.Cmd
	out    *os.File
	stderr bytes.Buffer
}

func startConnect(t *testing.T, ctx context.Context, url, stun, room string, in *os.File, outPath string) *peerRun {
	t.Helper()
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &peerRun{out: out}
	p.cmd = icetcp(ctx, "connect", "--signal", url, "--room", room, "--addrs", "127.0.0.1", "--stun", stun, "--json")
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = in, out, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomFile(t *testing.T, path string, n int) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, int64(n)); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return [32]byte(h.Sum(nil))
}

// events parses the --json lines of a connect process.
func events(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestConnectCarries50MiBEachWay(t *testing.T) {
	const size = 50 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	url, stun := startServe(t, ctx)
	dir := t.TempDir()
	sumA := randomFile(t, filepath.Join(dir, "a.in"), size)
	sumB := randomFile(t, filepath.Join(dir, "b.in"), size)
	inA, _ := os.Open(filepath.Join(dir, "a.in"))
	inB, _ := os.Open(filepath.Join(dir, "b.in"))
	defer inA.Close()
	defer inB.Close()
	a := startConnect(t, ctx, url, stun, "e2e", inA, filepath.Join(dir, "a.out"))
	b := startConnect(t, ctx, url, stun, "e2e", inB, filepath.Join(dir, "b.out"))
	errA, errB := a.cmd.Wait(), b.cmd.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("connect exited: A %v\n%s\nB %v\n%s", errA, a.stderr.String(), errB, b.stderr.String())
	}
	if fileSum(t, filepath.Join(dir, "a.out")) != sumB {
		t.Error("A's output differs from B's input")
	}
	if fileSum(t, filepath.Join(dir, "b.out")) != sumA {
		t.Error("B's output differs from A's input")
	}
	for _, p := range []*peerRun{a, b} {
		var sel map[string]any
		for _, ev := range events(t, p.stderr.String()) {
			if ev["event"] == "selected" {
				sel = ev
			}
		}
		if sel == nil {
			t.Fatalf("no selected event in %s", p.stderr.String())
		}
		if sel["path"] != "direct" || !strings.Contains(sel["local"].(string), "127.0.0.1") {
			t.Errorf("selected event %v", sel)
		}
		if _, ok := sel["connect_ms"].(float64); !ok {
			t.Errorf("connect_ms missing in %v", sel)
		}
	}
}

func TestConnectFailureIsAJSONEvent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// nothing listens on this rendezvous
	cmd := icetcp(ctx, "connect", "--signal", "ws://127.0.0.1:1", "--room", "r", "--addrs", "127.0.0.1", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v", err)
	}
	evs := events(t, stderr.String())
	last := evs[len(evs)-1]
	if last["event"] != "failed" || !strings.Contains(last["reason"].(string), "127.0.0.1:1") {
		t.Fatalf("want a failed event naming the rendezvous, got %v", last)
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"connect", "--room", "x"}, nil, &out, &errb); code != 2 {
		t.Fatalf("connect without --signal: exit %d", code)
	}
	if code := run([]string{"nope"}, nil, &out, &errb); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
	if code := run([]string{"connect", "--signal", "ws://x", "--room", "r", "--addrs", "not-an-ip"}, nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--addrs") {
		t.Fatalf("bad --addrs: exit %d, %s", code, errb.String())
	}
}

func TestDemo(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"demo", "--bytes", "1048576"}, nil, &out, &errb); code != 0 {
		t.Fatalf("demo exit %d: %s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "SHA-256 verified") {
		t.Fatalf("demo output: %s", out.String())
	}
}

// The comma-separated flags (--stun, --turn, --addrs, --disable, --profiles,
// --rows) share one reading: spaces trimmed, empty entries dropped, so a
// trailing comma is not an empty server name.
func TestSplitList(t *testing.T) {
	for in, want := range map[string][]string{
		"": nil, " , ": nil, "a": {"a"}, "a, b": {"a", "b"}, "a,,b,": {"a", "b"}, " turn:h:3478 ,turns:h:443": {"turn:h:3478", "turns:h:443"},
	} {
		if got := splitList(in); !slices.Equal(got, want) {
			t.Errorf("splitList(%q) = %q, want %q", in, got, want)
		}
	}
}
