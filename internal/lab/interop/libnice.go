package interop

import (
	"context"
	_ "embed"
	"errors"
	"os/exec"
	"testing"
)

//go:embed libnice_peer.py
var libniceScript []byte

// Python is the interpreter that has Debian's python3-gi: a pyenv or
// virtualenv python3 on PATH usually lacks it.
const Python = "/usr/bin/python3"

// ErrMissing: a tool a peer needs is not installed.
var ErrMissing = errors.New("interop: tool not installed (scripts/install-interop.sh)")

// LibniceAvailable reports whether libnice can be driven from Python here,
// and if not, why.
func LibniceAvailable() error {
	out, err := exec.Command(Python, "-c", `import gi; gi.require_version("Nice", "0.1"); from gi.repository import Nice; print(Nice.Agent.new_reliable)`).CombinedOutput()
	if err != nil {
		return errors.Join(ErrMissing, errors.New("libnice from Python (python3-gi, gir1.2-nice-0.1): "+string(out)), err)
	}
	return nil
}

// NewLibnice starts a libnice 0.1.x agent (reliable, RFC 5245
// compatibility, ICE-TCP only) in a Python child process. Stop it with
// Stop.
func NewLibnice(ctx context.Context, opts Options) (*Peer, error) {
	if err := LibniceAvailable(); err != nil {
		return nil, err
	}
	var env []string
	if opts.Debug {
		env = []string{"NICE_DEBUG=all", "G_MESSAGES_DEBUG=all"}
	}
	return startScript("libnice", opts, "libnice_peer.py", libniceScript, env, Python, opts.role(), opts.addr().String())
}

// StartLibnice is NewLibnice for a test: it skips (fails under CI=true)
// when libnice is missing and stops the peer at the test's end, printing
// its log if the test failed.
func StartLibnice(t testing.TB, opts Options) *Peer {
	t.Helper()
	requireTool(t, LibniceAvailable())
	p, err := NewLibnice(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	stopAtEnd(t, p)
	return p
}
