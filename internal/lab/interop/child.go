package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sync"
)

// Environment of a child peer process: the test binary runs itself as a
// pion peer where an in-process one cannot go (a NAT lab namespace).
const (
	childEnv     = "ICETCP_INTEROP_CHILD" // "pion"
	childRoleEnv = "ICETCP_INTEROP_ROLE"  // "controlling" or "controlled"
	childAddrEnv = "ICETCP_INTEROP_ADDR"  // the local address
)

// ServeChild runs this process as a child peer when the environment asks
// for it, speaking the JSON-lines protocol of the Python and Node peers on
// stdin and stdout, and reports whether it did. A test binary that uses
// NewPionProcess calls it first thing in TestMain and returns when true.
func ServeChild() bool {
	if os.Getenv(childEnv) != "pion" {
		return false
	}
	if err := servePion(); err != nil {
		fmt.Fprintln(os.Stderr, "interop child:", err)
		os.Exit(1)
	}
	return true
}

func servePion() error {
	opts := Options{Controlling: os.Getenv(childRoleEnv) == "controlling"}
	if a, err := netip.ParseAddr(os.Getenv(childAddrEnv)); err == nil {
		opts.Addr = a
	}
	var mu sync.Mutex // guards stdout
	enc := json.NewEncoder(os.Stdout)
	emit := func(e event) {
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(e)
	}
	p := newPeer("pion", opts)
	d, err := startPion(p, emit, os.Stderr)
	if err != nil {
		return err
	}
	defer d.stop()
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var c command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			emit(event{Ev: "error", Error: "bad command: " + err.Error()})
			continue
		}
		if c.Op == "quit" {
			return nil
		}
		d.do(c)
	}
	return sc.Err()
}

// NewPionProcess starts a pion/ice v2 peer in a child process: this
// program (os.Args[0]) again, which must call ServeChild at start, run
// through opts.Wrap (e.g. inside a NAT lab namespace).
func NewPionProcess(ctx context.Context, opts Options) (*Peer, error) {
	p := newPeer("pion", opts)
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("interop: pion child: %w", err)
	}
	env := []string{childEnv + "=pion", childRoleEnv + "=" + opts.role(), childAddrEnv + "=" + opts.addr().String()}
	d, err := startProc(p, env, exe)
	if err != nil {
		return nil, err
	}
	p.drv = d
	return p, nil
}
