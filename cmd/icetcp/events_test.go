package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icetcp/icetcp/secure"
)

// The --json events of connect tell the truth: the exact sequence for a
// clean end, a peer that crashed, a local error and a transfer the user
// interrupted. A session that ended cleanly never shows "failed", and one
// that did not never ends with "done".
func TestConnectEventSequences(t *testing.T) {
	prefix := []string{"state:gathering", "state:checking", "state:connected", "selected", "secured"}
	seq := func(last ...string) []string { return append(slices.Clone(prefix), last...) }

	t.Run("clean end", func(t *testing.T) {
		ctx, srv, secret, dir := eventSetup(t)
		a := startPeer(t, ctx, srv, bytes.NewReader(bytes.Repeat([]byte("a"), 1<<20)), filepath.Join(dir, "a.out"), "--secret", secret)
		b := startPeer(t, ctx, srv, bytes.NewReader(bytes.Repeat([]byte("b"), 1<<20)), filepath.Join(dir, "b.out"), "--secret", secret)
		for _, p := range []*peerRun{a, b} {
			if err := p.cmd.Wait(); err != nil {
				t.Fatalf("exit %v:\n%s", err, p.stderr.String())
			}
			wantSequence(t, p, seq("done"))
		}
	})

	t.Run("peer crash", func(t *testing.T) {
		ctx, srv, secret, dir := eventSetup(t)
		pr, pw := endless(t)
		sender := startPeer(t, ctx, srv, pr, filepath.Join(dir, "s.out"), "--secret", secret)
		recvOut := filepath.Join(dir, "r.out")
		// A crash reads like a broken path: the receiver looks for
		// another (and restarts ICE) for --resume-timeout, then fails.
		receiver := startPeer(t, ctx, srv, bytes.NewReader(nil), recvOut, "--secret", secret, "--resume-timeout", "2s")
		waitFileSize(t, ctx, recvOut, 1<<20)
		sender.cmd.Process.Signal(syscall.SIGKILL)
		sender.cmd.Wait()
		pw.Close()
		if err := receiver.cmd.Wait(); exitCode(err) != 1 {
			t.Fatalf("receiver exit %v after its peer crashed:\n%s", err, receiver.stderr.String())
		}
		wantSequence(t, receiver, seq("failed"))
		wantReason(t, receiver, "peer vanished after")
	})

	t.Run("local error", func(t *testing.T) {
		ctx, srv, secret, dir := eventSetup(t)
		pr, pw := endless(t)
		defer pw.Close()
		sender := startPeer(t, ctx, srv, pr, filepath.Join(dir, "s.out"), "--secret", secret)
		// The receiver cannot keep what it receives: its stdout is full.
		receiver := startPeer(t, ctx, srv, bytes.NewReader(nil), "/dev/full", "--secret", secret)
		if err := receiver.cmd.Wait(); exitCode(err) != 1 {
			t.Fatalf("receiver exit %v with a full stdout:\n%s", err, receiver.stderr.String())
		}
		if err := sender.cmd.Wait(); exitCode(err) != 1 {
			t.Fatalf("sender exit %v after its peer failed:\n%s", err, sender.stderr.String())
		}
		wantSequence(t, receiver, seq("failed"))
		wantReason(t, receiver, "no space left on device")
		wantSequence(t, sender, seq("failed"))
		wantReason(t, sender, "interrupted by the peer")
	})

	t.Run("interrupted", func(t *testing.T) {
		ctx, srv, secret, dir := eventSetup(t)
		pr, pw := endless(t)
		defer pw.Close()
		sender := startPeer(t, ctx, srv, pr, filepath.Join(dir, "s.out"), "--secret", secret)
		recvOut := filepath.Join(dir, "r.out")
		receiver := startPeer(t, ctx, srv, bytes.NewReader(nil), recvOut, "--secret", secret)
		waitFileSize(t, ctx, recvOut, 1<<20)
		sender.cmd.Process.Signal(syscall.SIGINT)
		if err := sender.cmd.Wait(); exitCode(err) != 130 {
			t.Fatalf("sender exit %v after SIGINT, want 130:\n%s", err, sender.stderr.String())
		}
		if err := receiver.cmd.Wait(); exitCode(err) != 1 {
			t.Fatalf("receiver exit %v after its peer was interrupted:\n%s", err, receiver.stderr.String())
		}
		wantSequence(t, sender, seq("failed"))
		wantReason(t, sender, "interrupted (interrupt)")
		wantSequence(t, receiver, seq("failed"))
		wantReason(t, receiver, "interrupted by the peer after")
	})
}

func eventSetup(t *testing.T) (context.Context, serveInfo, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx, startServeWith(t, ctx), secure.NewSecret().String(), t.TempDir()
}

// endless is a stdin that never ends: the transfer is always mid-way.
func endless(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	pr, pw := osPipe(t)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			rand.Read(buf)
			if _, err := pw.Write(buf); err != nil {
				return
			}
		}
	}()
	return pr, pw
}

// wantSequence compares a finished connect's events (warnings aside) with
// want, each written as "event" or "state:NAME".
func wantSequence(t *testing.T, p *peerRun, want []string) {
	t.Helper()
	var got []string
	for _, ev := range events(t, p.stderr.String()) {
		switch name := ev["event"].(string); name {
		case "warning", "progress": // progress events come every second of a transfer
		case "state":
			got = append(got, "state:"+ev["state"].(string))
		default:
			got = append(got, name)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q:\n%s", got, want, p.stderr.String())
	}
}

func wantReason(t *testing.T, p *peerRun, part string) {
	t.Helper()
	failed := lastEvent(t, p, "failed")
	if failed == nil || !strings.Contains(failed["reason"].(string), part) {
		t.Fatalf("want a failed event saying %q:\n%s", part, p.stderr.String())
	}
}

// --trace adds every step the agent traces (its Tracer is connect's event
// writer); the outcome events stay where they were.
func TestConnectTrace(t *testing.T) {
	ctx, srv, secret, dir := eventSetup(t)
	a := startPeer(t, ctx, srv, bytes.NewReader([]byte("a")), filepath.Join(dir, "a.out"), "--secret", secret, "--trace")
	b := startPeer(t, ctx, srv, bytes.NewReader([]byte("b")), filepath.Join(dir, "b.out"), "--secret", secret)
	for _, p := range []*peerRun{a, b} {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("exit %v:\n%s", err, p.stderr.String())
		}
	}
	kinds := map[string]bool{}
	var outcome []string
	for _, ev := range events(t, a.stderr.String()) {
		if ev["event"] == "trace" {
			kinds[ev["kind"].(string)] = true
		} else if ev["event"] != "warning" {
			outcome = append(outcome, ev["event"].(string))
		}
	}
	for _, k := range []string{"local", "remote", "selected"} {
		if !kinds[k] {
			t.Errorf("no %q trace event:\n%s", k, a.stderr.String())
		}
	}
	if !kinds["check-succeeded"] && !kinds["check-answered"] {
		t.Errorf("no check traced:\n%s", a.stderr.String())
	}
	if outcome[len(outcome)-1] != "done" {
		t.Errorf("events end with %q, want done", outcome)
	}
	if strings.Contains(b.stderr.String(), `"trace"`) {
		t.Errorf("trace events without --trace:\n%s", b.stderr.String())
	}
}
