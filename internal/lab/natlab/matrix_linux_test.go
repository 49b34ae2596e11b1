//go:build linux

package natlab

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeIcetcp stands in for the real binary: "serve" listens on both ports,
// "connect" checks that it was given the relay and the secret, echoes its
// own stdin back and claims an S-O pair, so every trial ends in a payload
// mismatch. It exercises the runner's process
// handling, not ICE.
const fakeIcetcp = `#!/bin/sh
case "$1" in
serve)
	exec python3 -c 'import socket,time
ss=[]
for p in (8080,3478):
    s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind(("198.51.100.10",p)); s.listen(); ss.append(s)
time.sleep(3600)';;
connect)
	case "$*" in *"--turn turn:"*"?transport=tcp --turn-user lab"*) ;; *) echo '{"event":"failed","reason":"no --turn"}' >&2; exit 1;; esac
	[ -n "$ICETCP_SECRET" ] && [ -n "$ICETCP_TURN_PASS" ] || { echo '{"event":"failed","reason":"no secret or TURN password"}' >&2; exit 1; }
	echo '{"event":"selected","local":"candidate:1 1 TCP 1 203.0.113.1 4 typ srflx tcptype so","remote":"candidate:1 1 TCP 1 203.0.113.2 5 typ srflx tcptype so","path":"direct","connect_ms":42}' >&2
	exec cat;;
esac
exit 2
`

func TestRunMatrixProcesses(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs python3 for the fake server")
	}
	bin := filepath.Join(t.TempDir(), "icetcp")
	if err := os.WriteFile(bin, []byte(fakeIcetcp), 0o755); err != nil {
		t.Fatal(err)
	}
	var seen []TrialResult
	res, err := RunMatrix(t.Context(), MatrixConfig{
		Binary: bin, Profiles: []string{"preserve-rst", "tcp443-only"}, Trials: 2,
		Timeout: 10 * time.Second, OnResult: func(tr TrialResult) { seen = append(seen, tr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cells) != 4 || len(seen) != 8 {
		t.Fatalf("%d cells, %d trials reported", len(res.Cells), len(seen))
	}
	for _, tr := range seen {
		if tr.OK || !strings.HasPrefix(tr.Reason, "payload") || tr.Path != "so srflx↔srflx" {
			t.Errorf("trial %+v", tr)
		}
	}
	var b strings.Builder
	res.Table(&b)
	t.Log("\n" + b.String())
}
