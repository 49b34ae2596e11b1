//go:build unix

package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icetcp/icetcp/secure"
)

// SIGSTOP of the peer after our side ended its stream: the peer's kernel
// keeps acknowledging, so only consent freshness (RFC 7675) can tell. The
// secure layer's end-of-stream is a record, not a TCP FIN, so consent keeps
// running both ways and the stopped peer is caught within the consent
// timeout (3 s here).
func TestSIGSTOPPeerAfterOurEndOfStreamIsDetected(t *testing.T) {
	watcher := sigstopAfterHalfClose(t, "--secret", secure.NewSecret().String())
	failed := lastEvent(t, watcher, "failed")
	if failed == nil || !strings.Contains(failed["reason"].(string), "peer vanished after 1000 bytes") || !strings.Contains(failed["reason"].(string), "consent") {
		t.Fatalf("want the stopped peer reported through consent:\n%s", watcher.stderr.String())
	}
}

// The same SIGSTOP with plain --room (issue 8): between icetcp peers the
// end of stream travels in band: between icetcp peers the end of stream travels in
// band, so consent keeps running after our half-close and a frozen peer is
// still caught.
func TestSIGSTOPAfterHalfCloseWithPlainRoom(t *testing.T) {
	watcher := sigstopAfterHalfClose(t, "--room", "plain")
	if !strings.Contains(watcher.stderr.String(), "consent") {
		t.Fatalf("watcher:\n%s", watcher.stderr.String())
	}
}

// sigstopAfterHalfClose runs a pair with the given room flags and a 3 s
// consent timeout: the watcher sends nothing (its stream ends at once) and
// reads 1,000 bytes from the other peer, which keeps its stdin open and is
// then stopped with SIGSTOP. It returns the watcher, which must have exited
// non-zero.
func sigstopAfterHalfClose(t *testing.T, roomFlags ...string) *peerRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	srv := startServeWith(t, ctx)
	dir := t.TempDir()
	pr, pw := osPipe(t)
	if _, err := pw.Write(bytes.Repeat([]byte("z"), 1000)); err != nil { // then nothing, stdin stays open
		t.Fatal(err)
	}
	flags := append(roomFlags, "--consent-timeout", "3s")
	stopped := startPeer(t, ctx, srv, pr, filepath.Join(dir, "s.out"), flags...)
	outPath := filepath.Join(dir, "r.out")
	watcher := startPeer(t, ctx, srv, bytes.NewReader(nil), outPath, flags...)
	waitFileSize(t, ctx, outPath, 1000) // the watcher ended its stream long before
	if err := stopped.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopped.cmd.Process.Signal(syscall.SIGCONT) })
	if exitCode(watcher.cmd.Wait()) == 0 {
		t.Fatalf("watcher exited 0 with its peer stopped:\n%s", watcher.stderr.String())
	}
	return watcher
}
