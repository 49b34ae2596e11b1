// Command relay benchmarks the embedded TURN relay (internal/relay) beside
// coturn on loopback and prints a markdown table: Allocate latency,
// relayed throughput through an RFC 6062 Connect/Accept pair, the relay's
// CPU per GiB relayed, TCP allocations per second, RSS per idle allocation,
// and a direct TCP transfer between the same clients for comparison.
//
// Both relays run as child processes, so their CPU (/proc/PID/stat) and
// memory (/proc/PID/status) are read the same way; the embedded relay is
// this binary re-executed with -server. The clients are pion/turn v5 in
// this process, and share the machine's cores with the relay.
//
// The Connect/Accept pair (client A connects to client B's relayed
// address) is how two ICE agents on one relay talk, and the relay carries
// every byte twice; the one-leg row (a client to a plain TCP peer) carries
// it once.
//
//	go run ./bench/relay          # the full run (256 MiB, 5,000 allocations, 2,000 idle)
//	go run ./bench/relay -quick   # a few seconds, for CI
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/icetcp/icetcp/internal/lab/coturn"
)

type options struct {
	mib, latencySamples, allocs, clients, idle int
	coturn, quick, bare, pin                   bool
}

func main() {
	child := flag.Bool("server", false, "internal: run as the embedded relay under test")
	bareChild := flag.Bool("server-bare", false, "internal: run as a bare pion/turn server")
	flag.StringVar(&childProfile, "server-cpuprofile", "", "write the embedded relay's CPU profile to this file")
	var o options
	flag.BoolVar(&o.quick, "quick", false, "small sizes: 16 MiB, 50 latency samples, 500 allocations, 200 idle (a few seconds, for CI)")
	flag.IntVar(&o.mib, "mib", 256, "MiB relayed through the Connect/Accept pair")
	flag.IntVar(&o.latencySamples, "latency-samples", 200, "Allocate transactions timed one after another")
	flag.IntVar(&o.allocs, "allocs", 5000, "allocations for the rate")
	flag.IntVar(&o.clients, "clients", 50, "concurrent clients for the rate and the idle allocations")
	flag.IntVar(&o.idle, "idle", 2000, "idle allocations held for the RSS reading")
	flag.BoolVar(&o.coturn, "coturn", true, "measure coturn too (turnserver on PATH; skipped with a note when missing)")
	flag.BoolVar(&o.bare, "bare", false, "measure a bare pion/turn v5 server too (its own relay generator and data plane)")
	flag.BoolVar(&o.pin, "pin", canPin(), "pin each relay to CPU 0 and the load generator (this process) to the other CPUs with taskset\n"+
		"(default on with 2 CPUs or more and taskset installed)")
	flag.Parse()
	if *child {
		if err := runChild(childProfile); err != nil {
			fmt.Fprintln(os.Stderr, "relay child:", err)
			os.Exit(1)
		}
		return
	}
	if *bareChild {
		if err := runBareChild(); err != nil {
			fmt.Fprintln(os.Stderr, "bare child:", err)
			os.Exit(1)
		}
		return
	}
	if o.quick {
		o.mib, o.latencySamples, o.allocs, o.idle = 16, 50, 500, 200
	}
	if err := run(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one relay's column; a failed measurement keeps its error.
type result struct {
	name         string
	latMedian    float64 // ms
	latP90       float64 // ms
	relayed      throughput
	oneLeg       throughput
	rate         float64 // allocations/s
	rateCPU      time.Duration
	rssPerAlloc  float64 // KiB
	errs         map[string]error
	measuredIdle int
}

func run(w io.Writer, o options) error {
	o.idle = fitIdle(o.idle)
	if o.pin {
		if err := pin(os.Getpid(), genCPUs()); err != nil {
			return err
		}
	}
	g, err := newLoadGen()
	if err != nil {
		return err
	}
	size := int64(o.mib) << 20
	direct, err := direct(size)
	if err != nil {
		return fmt.Errorf("direct transfer: %w", err)
	}
	starts := []func() (*server, error){startEmbedded}
	note := ""
	switch {
	case !o.coturn:
	case coturn.Installed():
		starts = append(starts, startCoturn)
	default:
		note = "coturn not measured: turnserver is not installed (apt-get install coturn)"
	}
	if o.bare {
		starts = append(starts, startBare)
	}
	var results []*result
	failed := false
	for _, start := range starts {
		s, err := start()
		if err != nil {
			return err
		}
		if o.pin {
			if err := pin(s.pid, relayCPUs); err != nil {
				s.stop()
				return err
			}
		}
		r := measure(g, s, o, size)
		if err := s.stop(); err != nil {
			r.errs["stop"] = err
		}
		failed = failed || len(r.errs) > 0
		results = append(results, r)
	}
	printTable(w, o, results, direct, note)
	if failed {
		return fmt.Errorf("some measurements failed (see the table)")
	}
	return nil
}

func measure(g *loadGen, s *server, o options, size int64) *result {
	r := &result{name: s.name, errs: map[string]error{}, measuredIdle: o.idle}
	med, p90, err := g.allocateLatency(s, o.latencySamples)
	r.latMedian, r.latP90 = ms(med.Seconds()), ms(p90.Seconds())
	r.note("latency", err)
	r.relayed, err = g.relayed(s, size)
	r.note("relayed", err)
	r.oneLeg, err = g.oneLeg(s, size)
	r.note("oneLeg", err)
	r.rate, r.rateCPU, err = g.allocationRate(s, o.allocs, o.clients)
	r.note("rate", err)
	r.rssPerAlloc, err = g.idleRSS(s, o.idle, o.clients)
	r.note("rss", err)
	return r
}

func ms(s float64) float64 { return s * 1000 }

func (r *result) note(what string, err error) {
	if err != nil {
		r.errs[what] = err
	}
}

func printTable(w io.Writer, o options, rs []*result, direct throughput, note string) {
	placement := "the relays and the load generator share every CPU"
	if o.pin {
		placement = fmt.Sprintf("each relay pinned to CPU %s, the load generator to CPU %s (taskset)", relayCPUs, genCPUs())
	}
	fmt.Fprintf(w, "relay benchmark on loopback, %d CPUs, one run; every relay in its own process, the load generator (pion/turn v5 clients, the same for both relays, "+
		"256 KiB writes and reads) in the bench process; %s; coturn at its default log level (no -v), its log into a pipe the bench drains; load average at the end: %s\n\n",
		runtime.NumCPU(), placement, loadAverage())
	fmt.Fprint(w, "| |")
	for _, r := range rs {
		fmt.Fprintf(w, " %s |", r.name)
	}
	fmt.Fprint(w, "\n|---|")
	for range rs {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	row := func(label, key string, cell func(r *result) string) {
		fmt.Fprintf(w, "| %s |", label)
		for _, r := range rs {
			if err := r.errs[key]; err != nil {
				fmt.Fprintf(w, " error: %v |", err)
				continue
			}
			fmt.Fprintf(w, " %s |", cell(r))
		}
		fmt.Fprintln(w)
	}
	row(fmt.Sprintf("Allocate latency with the 401 round (median / p90 of %d)", o.latencySamples), "latency",
		func(r *result) string { return fmt.Sprintf("%.2f / %.2f ms", r.latMedian, r.latP90) })
	row(fmt.Sprintf("relayed throughput, %d MiB through a Connect/Accept pair", o.mib), "relayed",
		func(r *result) string { return fmt.Sprintf("%s MB/s", thousands(r.relayed.mbps)) })
	row("server CPU per GiB relayed", "relayed",
		func(r *result) string { return fmt.Sprintf("%.2f s", r.relayed.cpuPerGiB) })
	row(fmt.Sprintf("one leg: %d MiB from a client to a plain TCP peer (Connect)", o.mib), "oneLeg",
		func(r *result) string {
			return fmt.Sprintf("%s MB/s, %.2f s CPU/GiB", thousands(r.oneLeg.mbps), r.oneLeg.cpuPerGiB)
		})
	row(fmt.Sprintf("TCP allocations/s (%d by %d concurrent clients)", o.allocs, o.clients), "rate",
		func(r *result) string {
			return fmt.Sprintf("%s (server CPU %d µs each)", thousands(r.rate), r.rateCPU.Microseconds())
		})
	row(fmt.Sprintf("RSS per idle allocation (%d held)", rs[0].measuredIdle), "rss",
		func(r *result) string { return fmt.Sprintf("%.1f KiB", r.rssPerAlloc) })
	row(fmt.Sprintf("direct TCP between the same two clients, %d MiB", o.mib), "relayed",
		func(r *result) string {
			return fmt.Sprintf("%s MB/s (relayed: %.0f %%)", thousands(direct.mbps), 100*r.relayed.mbps/direct.mbps)
		})
	fmt.Fprintln(w)
	if note != "" {
		fmt.Fprintln(w, note)
	}
	if len(rs) >= 2 && len(rs[0].errs) == 0 && len(rs[1].errs) == 0 && strings.HasPrefix(rs[1].name, "coturn") {
		printGoals(w, o, rs[0], rs[1])
	}
}

// printGoals compares the embedded relay with the targets.
func printGoals(w io.Writer, o options, e, c *result) {
	mark := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	tput := e.relayed.mbps / c.relayed.mbps
	cpu := e.relayed.cpuPerGiB / c.relayed.cpuPerGiB
	fmt.Fprintf(w, "goals for the embedded relay:")
	if o.quick {
		fmt.Fprintf(w, " (quick run: sizes too small to judge)")
	}
	fmt.Fprintf(w, "\n- relayed throughput ≥ 4× coturn: %.1f× (%s)\n", tput, mark(tput >= 4))
	fmt.Fprintf(w, "- CPU per GiB ≤ ¼ of coturn's: %.2f× (%s)\n", cpu, mark(cpu <= 0.25))
	fmt.Fprintf(w, "- ≥ 3,000 TCP allocations/s: %s (%s)\n", thousands(e.rate), mark(e.rate >= 3000))
	fmt.Fprintf(w, "- ≤ 24 KiB per idle allocation: %.1f KiB (%s)\n", e.rssPerAlloc, mark(e.rssPerAlloc <= 24))
}

// loadAverage is the 1-minute load average, which says how much the
// numbers are worth on a shared machine.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// thousands formats a non-negative number with thousands separators and no
// decimals.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
