// Command scale measures what a media server pays per session: N ICE-TCP
// sessions whose server-side agents share one passive port through an
// agent.Mux, held idle after connecting. The server side runs in this
// process, the client agents in a child process (so each side has the
// file descriptors it needs), and signaling travels between them over one
// pipe. It prints a markdown table: sessions, failures, connects per
// second, and per idle session the heap, goroutines and stack.
//
//	go run ./bench/scale                 # 1,000 and 10,000 sessions
//	go run ./bench/scale -n 1000,5000
//	go run ./bench/scale -quick          # 200 sessions, for CI
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/internal/stuntcp"
)

const (
	childEnv = "ICETCP_SCALE_CHILD"
	// sessionEnv tells the child to turn the session layer on (-session).
	sessionEnv = "ICETCP_SCALE_SESSION"
	busyEnv    = "ICETCP_SCALE_BUSY"
)

var memProfile string

func main() {
	if os.Getenv(busyEnv) != "" {
		for { // a busy process beside the bench: a loaded media server
		}
	}
	if os.Getenv(childEnv) != "" {
		if err := child(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "scale child:", err)
			os.Exit(1)
		}
		return
	}
	sizes := flag.String("n", "1000,10000", "comma-separated session counts")
	quick := flag.Bool("quick", false, "one small run (200 sessions), for CI")
	parallel := flag.Int("parallel", 256, "sessions connecting at once")
	flag.StringVar(&memProfile, "memprofile", "", "write a heap profile of the idle sessions here")
	flag.BoolVar(&withSession, "session", false, "sessions with the session layer (Config.Session) on both sides")
	load := flag.Int("load", 0, "busy processes running beside the bench (a loaded host)")
	inproc := flag.Bool("inproc", false, "both agents of every session in this process (failures and rate only; at most ~9,900 sessions under a 20,000 fd limit)")
	flag.Parse()
	if memProfile != "" {
		// Every allocation recorded: the default rate samples one per
		// 512 KiB, which puts ±25 % on a few-hundred-byte struct's total.
		runtime.MemProfileRate = 1
	}
	stop, err := startLoad(*load)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
	defer stop()
	if *quick {
		*sizes = "200"
	}
	fmt.Printf("scale: %s, %d CPUs, %d busy processes beside, %s\n\n", runtime.Version(), runtime.NumCPU(), *load, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Println("| sessions | failures | connects/s | heap per idle session | goroutines per idle session | stack per idle session | NAT measurements (server side) |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|")
	failed := false
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "scale: bad -n %q\n", s)
			os.Exit(2)
		}
		measure := run
		if *inproc {
			measure = runInProcess
		}
		r, err := measure(n, *parallel)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
		if *inproc {
			fmt.Printf("| %d | %d | %.0f | - | - | - | - |\n", n, r.failures, r.rate)
		} else {
			fmt.Printf("| %d | %d | %.0f | %.1f KiB | %.2f | %.1f KiB | %d |\n", n, r.failures, r.rate,
				r.heap/1024, r.goroutines, r.stack/1024, r.natChecks)
		}
		failed = failed || r.failures > 0
	}
	if failed {
		stop()
		os.Exit(1)
	}
}

// startSTUN runs a STUN-over-TCP server on loopback.
func startSTUN() (addr string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &stuntcp.Server{LoggerFactory: quiet()}
	go srv.Serve(l)
	return l.Addr().String(), func() { srv.Close() }, nil
}

// startLoad runs n busy processes (this program, spinning) until stop.
func startLoad(n int) (stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var procs []*exec.Cmd
	stop = func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
		procs = nil
	}
	for range n {
		p := exec.Command(self)
		p.Env = append(os.Environ(), busyEnv+"=1")
		if err := p.Start(); err != nil {
			stop()
			return nil, err
		}
		procs = append(procs, p)
	}
	return stop, nil
}

type result struct {
	natChecks               int // NAT measurements the server agents made
	failures                int
	rate                    float64
	heap, goroutines, stack float64
}

// msg is one line on the pipe: a signaling message for session S, or a
// control word.
type msg struct {
	S   int             `json:"s"`
	M   json.RawMessage `json:"m,omitempty"`
	Ctl string          `json:"ctl,omitempty"`
}

func quiet() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelError
	return f
}

// run measures n sessions: server agents here, client agents in a child.
func run(n, parallel int) (result, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	mux, err := agent.NewMux(l, agent.MuxConfig{MaxPending: 4096, MaxPendingPerSource: 4096, LoggerFactory: quiet()})
	if err != nil {
		return result{}, err
	}
	defer mux.Close()
	// A STUN server, so that every server agent wants its NAT class: they
	// share one measurement through the Mux (agent.NATCache).
	stun, stop, err := startSTUN()
	if err != nil {
		return result{}, err
	}
	defer stop()
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	if withSession {
		cmd.Env = append(cmd.Env, sessionEnv+"=1")
	}
	cmd.Stderr = os.Stderr
	toChild, _ := cmd.StdinPipe()
	fromChild, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer cmd.Wait()
	defer toChild.Close()
	p := newPipe(n, toChild, fromChild)
	go p.read()
	p.ctl(fmt.Sprintf("start %d %d", n, parallel))

	runtime.GC()
	debug.FreeOSMemory()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()

	agents := make([]*agent.Agent, n)
	conns := make([]*agent.Conn, n)
	var failures atomic.Int64
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		a, err := agent.New(agent.Config{Mux: mux, DisableActive: true, DisableSO: true, Role: agent.RoleControlled,
			STUNServers: []string{stun}, ConnectTimeout: time.Minute, Session: withSession})
		if err != nil {
			return result{}, err
		}
		agents[i] = a
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := a.Connect(ctx, p.channel(i))
			if err != nil {
				failures.Add(1)
				fmt.Fprintf(os.Stderr, "session %d: %v\n", i, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	took := time.Since(start)
	p.forgetChannels()      // the agents no longer use signaling
	time.Sleep(time.Second) // listeners released, signaling goroutines gone
	runtime.GC()
	debug.FreeOSMemory()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	g1 := runtime.NumGoroutine()
	if memProfile != "" {
		if f, err := os.Create(memProfile); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	live := float64(n - int(failures.Load()))
	r := result{
		natChecks:  mux.NAT().Measurements(),
		failures:   int(failures.Load()),
		rate:       float64(n) / took.Seconds(),
		heap:       float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / live,
		goroutines: float64(g1-g0) / live,
		stack:      float64(int64(after.StackInuse)-int64(before.StackInuse)) / live,
	}
	p.ctl("stop")
	for _, a := range agents {
		a.Close()
	}
	return r, nil
}

// pipe carries the signaling of every session over one byte stream.
type pipe struct {
	w   io.Writer
	r   io.Reader
	wmu sync.Mutex

	mu    sync.Mutex
	chans map[int]*pipeChannel
	ctlCh chan string
}

func newPipe(n int, w io.Writer, r io.Reader) *pipe {
	return &pipe{w: w, r: r, chans: make(map[int]*pipeChannel, n), ctlCh: make(chan string, 4)}
}

func (p *pipe) channel(i int) *pipeChannel {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.chans[i]
	if c == nil {
		// 256 slots (6.1 KiB): the queue is freed before the heap is
		// measured, and at 64 slots (1.6 KiB) it shared the 1,792-byte
		// size class with the agents and left their spans partly empty
		// after it (~1 KiB a session: the bench's cost counted as theirs).
		c = &pipeChannel{p: p, s: i, in: make(chan []byte, 256), done: make(chan struct{})}
		p.chans[i] = c
	}
	return c
}

func (p *pipe) forgetChannels() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.chans {
		c.Close()
	}
	p.chans = map[int]*pipeChannel{}
}

func (p *pipe) write(m msg) error {
	b, _ := json.Marshal(m)
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := p.w.Write(append(b, '\n'))
	return err
}

func (p *pipe) ctl(word string) { p.write(msg{Ctl: word}) }

func (p *pipe) read() {
	sc := bufio.NewScanner(p.r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m msg
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if m.Ctl != "" {
			p.ctlCh <- m.Ctl
			continue
		}
		c := p.channel(m.S)
		select {
		case c.in <- append([]byte(nil), m.M...):
		case <-c.done:
		}
	}
	close(p.ctlCh)
}

// withSession turns Config.Session on in both processes (-session).
var withSession = os.Getenv(sessionEnv) != ""
