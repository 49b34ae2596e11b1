// Command cluster benchmarks the rendezvous: how many rooms per second one
// node sustains, in memory and on NATS, against two nodes of a cluster,
// and prints a markdown table.
//
// Every server is a process of its own (this binary re-executed): the
// NATS server (nats-server/v2 with JetStream, in memory) and each
// rendezvous node, so that their CPU is read from /proc the same way. The
// load generator is this process: real WebSocket clients (package
// signaling/wsclient), two per room, which join, send a round of
// signaling (three candidates and end-of-candidates), read the peer's and
// leave. With two nodes every room has one member on each node. A room's
// time runs from its first dial to its last member's close.
//
//	go run ./bench/cluster                 # 4,000 rooms per row, 200 at a time
//	go run ./bench/cluster -quick          # a few seconds, for CI
//	go run ./bench/cluster -pin            # load generator on the last CPU, servers on the others (taskset)
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/lab/child"
	"github.com/icetcp/icetcp/internal/lab/natsd"
	"github.com/icetcp/icetcp/internal/procstat"
	"github.com/icetcp/icetcp/internal/testnet"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/rendezvous"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

type options struct {
	rooms, parallel int
	pin, quick      bool
}

func main() {
	natsMode := flag.Bool("nats", false, "internal: run as the NATS server")
	nodeMode := flag.String("node", "", "internal: run as a rendezvous node; the NATS URL, or mem for rooms in memory")
	var o options
	flag.IntVar(&o.rooms, "rooms", 4000, "rooms per row")
	flag.IntVar(&o.parallel, "parallel", 200, "rooms under way at once")
	flag.BoolVar(&o.pin, "pin", false, "pin the load generator to the last CPU and the servers to the others (taskset; needs 2 CPUs or more)")
	flag.BoolVar(&o.quick, "quick", false, "small: 300 rooms per row, 50 at a time (a few seconds, for CI)")
	flag.Parse()
	var err error
	switch {
	case *natsMode:
		err = runNATS()
	case *nodeMode != "":
		err = runNode(*nodeMode)
	default:
		if o.quick {
			o.rooms, o.parallel = 300, 50
		}
		err = run(os.Stdout, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// runNATS serves NATS with JetStream on a free loopback port, prints its
// URL and stops when stdin closes.
func runNATS() error {
	s, err := natsd.Start(natsd.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println(s.URL())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// runNode serves a rendezvous node on a free loopback port (on the NATS
// cluster at natsURL, or with its rooms in memory for "mem"), prints its
// URL and stops when stdin closes.
func runNode(natsURL string) error {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelWarn
	lf.Writer = os.Stderr
	// The load comes from one address: the per-source limits are the
	// protection under test elsewhere, capacity here.
	s := &rendezvous.Server{LoggerFactory: lf, MaxConns: 1 << 20, MaxConnsPerSource: 1 << 20, MaxRooms: 1 << 20, MaxRoomsPerSource: 1 << 20}
	if natsURL != "mem" {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			return err
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := rendezvous.NewCluster(ctx, rendezvous.ClusterConfig{Conn: nc, Name: "bench"})
		cancel()
		if err != nil {
			return err
		}
		s.Cluster = c
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l, nil) }()
	fmt.Println("ws://" + l.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	err = s.Close()
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// proc is a server process of the bench.
type proc struct {
	addr  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

func start(cpus string, args ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	name, argv := exe, args
	if cpus != "" {
		name, argv = "taskset", append([]string{"-c", cpus, exe}, args...)
	}
	cmd := exec.Command(name, argv...)
	cmd.Stderr = os.Stderr
	child.Prepare(cmd, false)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%s printed no address: %w", strings.Join(args, " "), err)
	}
	return &proc{addr: strings.TrimSpace(line), cmd: cmd, stdin: in}, nil
}

func (p *proc) stop() error {
	p.stdin.Close()
	return p.cmd.Wait()
}

// setup is one row: how the rooms are kept.
type setup struct {
	name  string
	nodes int
	nats  bool
}

// row is one setup's result.
type row struct {
	setup
	rooms, failures int
	elapsed         time.Duration
	median, p99     time.Duration
	nodeCPU         float64 // seconds, all nodes
	natsCPU         float64
	genCPU          float64
	err             error
}

func run(w io.Writer, o options) error {
	serverCPUs, genCPUs := "", ""
	if o.pin {
		n := runtime.NumCPU()
		if n < 2 {
			return errors.New("-pin needs 2 CPUs or more")
		}
		serverCPUs, genCPUs = fmt.Sprintf("0-%d", n-2), fmt.Sprint(n-1)
		if err := procstat.PinSelf(genCPUs); err != nil {
			return err
		}
	}
	setups := []setup{{"1 node, rooms in memory (no --cluster)", 1, false}, {"1 node on NATS", 1, true}, {"2 nodes on NATS", 2, true}}
	var rows []row
	for _, s := range setups {
		r := measure(s, o, serverCPUs)
		rows = append(rows, r)
	}
	printTable(w, o, rows, serverCPUs, genCPUs)
	for _, r := range rows {
		if r.err != nil || r.failures > 0 {
			return fmt.Errorf("%s: %d failures, %v", r.name, r.failures, r.err)
		}
	}
	return nil
}

func measure(s setup, o options, cpus string) (r row) {
	r.setup = s
	var natsProc *proc
	target := "mem"
	if s.nats {
		var err error
		if natsProc, err = start(cpus, "-nats"); err != nil {
			r.err = err
			return r
		}
		defer natsProc.stop()
		target = natsProc.addr
	}
	var nodes []*proc
	defer func() {
		for _, n := range nodes {
			n.stop()
		}
	}()
	for range s.nodes {
		n, err := start(cpus, "-node", target)
		if err != nil {
			r.err = err
			return r
		}
		nodes = append(nodes, n)
	}
	cpu := func() (node, ns, gen float64) {
		for _, n := range nodes {
			c, _ := procstat.CPUSeconds(n.cmd.Process.Pid)
			node += c
		}
		if natsProc != nil {
			ns, _ = procstat.CPUSeconds(natsProc.cmd.Process.Pid)
		}
		gen, _ = procstat.CPUSeconds(os.Getpid())
		return node, ns, gen
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = testnet.Dialer("127.0.0.1").DialContext // no TIME_WAIT left by thousands of connections
	tr.MaxIdleConnsPerHost = -1
	d := &wsclient.Dialer{HTTPClient: &http.Client{Transport: tr}, PingInterval: -1}
	// A short warm-up: connections, JIT-free but caches and the bucket.
	load(d, nodes, 50, 10, "warm")
	n0, s0, g0 := cpu()
	start := time.Now()
	times, failures := load(d, nodes, o.rooms, o.parallel, "room")
	r.elapsed = time.Since(start)
	n1, s1, g1 := cpu()
	r.nodeCPU, r.natsCPU, r.genCPU = n1-n0, s1-s0, g1-g0
	r.rooms, r.failures = o.rooms, failures
	slices.Sort(times)
	if len(times) > 0 {
		r.median, r.p99 = times[len(times)/2], times[len(times)*99/100]
	}
	return r
}

// load runs rooms rooms, parallel at a time, and returns each successful
// room's time and the failures.
func load(d *wsclient.Dialer, nodes []*proc, rooms, parallel int, prefix string) ([]time.Duration, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var next atomic.Int64
	var mu sync.Mutex
	var times []time.Duration
	failures := 0
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < rooms; i = int(next.Add(1) - 1) {
				start := time.Now()
				err := room(ctx, d, nodes[i%len(nodes)].addr, nodes[(i+1)%len(nodes)].addr, fmt.Sprintf("%s-%d", prefix, i))
				mu.Lock()
				if err != nil {
					failures++
					if failures <= 3 {
						fmt.Fprintf(os.Stderr, "bench: room %d: %v\n", i, err)
					}
				} else {
					times = append(times, time.Since(start))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return times, failures
}

// room is one room: both members join (through urlA and urlB), send a
// round, read the peer's, and leave.
func room(ctx context.Context, d *wsclient.Dialer, urlA, urlB, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	for _, u := range []string{urlA, urlB} {
		go func() { errs <- member(ctx, d, u, name) }()
	}
	return errors.Join(<-errs, <-errs)
}

const cand = "candidate:1 1 TCP 2128609279 10.0.0.1 9 typ host tcptype active"

func member(ctx context.Context, d *wsclient.Dialer, url, name string) error {
	c, err := d.Dial(ctx, url, name)
	if err != nil {
		return err
	}
	defer c.Close()
	for range 3 {
		if err := c.Send(ctx, signaling.Message{Type: signaling.TypeCandidate, Candidate: cand}); err != nil {
			return err
		}
	}
	if err := c.Send(ctx, signaling.Message{Type: signaling.TypeEndOfCandidates}); err != nil {
		return err
	}
	got := 0
	for {
		m, err := c.Recv(ctx)
		if err != nil {
			return err
		}
		switch m.Type {
		case signaling.TypeCandidate:
			got++
		case signaling.TypeEndOfCandidates:
			if got != 3 {
				return fmt.Errorf("end-of-candidates after %d candidates", got)
			}
			return nil
		case signaling.TypePeerLeft:
			// The peer got our round and left first: it left after ours
			// arrived, but we still need its round, which came before.
			return fmt.Errorf("peer left before its round arrived (%d candidates)", got)
		}
	}
}

func printTable(w io.Writer, o options, rows []row, serverCPUs, genCPUs string) {
	placement := fmt.Sprintf("the servers and the load generator share all %d CPUs", runtime.NumCPU())
	if serverCPUs != "" {
		placement = fmt.Sprintf("servers (NATS and the nodes) pinned to CPU %s, the load generator to CPU %s (taskset)", serverCPUs, genCPUs)
	}
	fmt.Fprintf(w, "rendezvous rooms on loopback, %d CPUs, one run; %d rooms per row, %d at a time, each two WebSocket clients exchanging a round of signaling (3 candidates, end-of-candidates) each way; every process its own: %s; load average at the end: %s\n\n",
		runtime.NumCPU(), o.rooms, o.parallel, placement, loadAverage())
	fmt.Fprintln(w, "| setup | rooms/s | room median / p99 | failures | node CPU per room | NATS CPU per room | load generator CPU per room |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	var base float64
	for i, r := range rows {
		if r.err != nil {
			fmt.Fprintf(w, "| %s | error: %v | | | | | |\n", r.name, r.err)
			continue
		}
		rate := float64(r.rooms-r.failures) / r.elapsed.Seconds()
		rel := ""
		if i == 1 {
			base = rate
		}
		if i == 2 && base > 0 {
			rel = fmt.Sprintf(" (%.2f× one node on NATS)", rate/base)
		}
		per := func(s float64) string { return fmt.Sprintf("%.0f µs", s/float64(r.rooms)*1e6) }
		natsCPU := "-"
		if r.nats {
			natsCPU = per(r.natsCPU)
		}
		fmt.Fprintf(w, "| %s | %s%s | %.1f / %.1f ms | %d | %s | %s | %s |\n", r.name, thousands(rate), rel,
			float64(r.median.Microseconds())/1000, float64(r.p99.Microseconds())/1000, r.failures, per(r.nodeCPU), natsCPU, per(r.genCPU))
	}
}

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
