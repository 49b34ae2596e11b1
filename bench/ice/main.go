// Command ice measures icetcp against other ICE agents on loopback and
// prints markdown tables: time to connected (icetcp, pion/ice v2, libnice,
// and icetcp against each), throughput of the selected connection against
// raw TCP written the same way, and time to gather.
//
//	go run ./bench/ice           # one full run (about a minute)
//	go run ./bench/ice -quick    # a few seconds, for CI
//	go run ./bench/ice -lab      # (root) time to connected through the NAT lab at 20 ms
//	go run ./bench/ice -table throughput   # one table: connect, throughput or gather
//
// libnice rows need /usr/bin/python3 with gir1.2-nice-0.1
// (scripts/install-interop.sh); without it they say so and are skipped.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/lab/interop"
)

type config struct {
	trials int   // connect and gather trials per row
	bytes  int64 // bytes per throughput run
	rounds int   // throughput rounds per write size (raw and icetcp alternated)
	quick  bool
}

func main() {
	if interop.ServeChild() { // this program again, as a pion peer inside a lab namespace
		return
	}
	quick := flag.Bool("quick", false, "a few trials and small transfers: finishes in seconds")
	lab := flag.Bool("lab", false, "only the NAT-lab table: icetcp, pion and libnice through a NAT at 20 ms one way (root)")
	trials := flag.Int("trials", 20, "connect and gather trials per row")
	mib := flag.Int64("mib", 256, "MiB per throughput run")
	rounds := flag.Int("rounds", 5, "throughput rounds per write size: raw TCP and each icetcp Conn alternated, medians reported")
	only := flag.String("table", "", "run one table: connect, throughput or gather")
	flag.Parse()
	cfg := config{trials: *trials, bytes: *mib << 20, rounds: max(*rounds, 1), quick: *quick}
	if cfg.quick {
		cfg.trials, cfg.bytes, cfg.rounds = 3, 8<<20, 1
	}
	runTables := run
	switch {
	case *lab:
		runTables = labTable
	case *only == "connect":
		runTables = connectTable
	case *only == "throughput":
		runTables = throughputTable
	case *only == "gather":
		runTables = gatherTable
	}
	if err := runTables(os.Stdout, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ice:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, cfg config) error {
	fmt.Fprintf(w, "# ICE over TCP on loopback\n\n%s\n\n", machine())
	if err := connectTable(w, cfg); err != nil {
		return err
	}
	if err := throughputTable(w, cfg); err != nil {
		return err
	}
	return gatherTable(w, cfg)
}

// machine describes where the numbers come from.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs (%s), %s %s/%s, one run, %s",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH, "loopback only")
}

// quietLogs keeps the agents' warnings out of the tables.
func quietLogs() logging.LoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	lf.Writer = io.Discard
	return lf
}
