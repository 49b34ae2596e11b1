package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/icetcp/icetcp/internal/delayline"
	"github.com/icetcp/icetcp/internal/natlab"
)

// labCmd builds the namespace NAT lab for every pair of profiles, runs
// `icetcp connect` between the two peers a number of times and prints the
// matrix: success rate, winning path, connect times and failure reasons.
func labCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profiles := fs.String("profiles", "", "comma-separated NAT profiles for rows and columns (default: all; see --list)")
	trials := fs.Int("trials", 3, "trials per cell")
	delay := fs.Duration("delay", 20*time.Millisecond, "one-way delay of each peer's WAN link (A-B RTT is twice this)")
	jitter := fs.Duration("jitter", 0, "uniform jitter added to each packet's delay")
	loss := fs.Float64("loss", 0, "packet loss probability per link (0..1)")
	timeout := fs.Duration("timeout", 40*time.Second, "bound on one trial")
	sameNAT := fs.Bool("same-nat", true, "add a row of cells with both peers behind one NAT of each profile")
	prime := fs.Int("prime-ttl", 0, "pass --prime-ttl N to every connect (low-TTL SYN priming)")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	logDir := fs.String("log-dir", "", "write both sides' stderr of failed trials here (set ICETCP_LOG=debug for agent logs)")
	list := fs.Bool("list", false, "list the NAT profiles and exit")
	cleanup := fs.Bool("cleanup", false, "remove namespaces and devices left by earlier runs and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list {
		for _, p := range natlab.Profiles() {
			fmt.Fprintf(stdout, "%-14s %s\n", p.Name, p.Description)
		}
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("lab: needs root (network namespaces and nftables)")
	}
	if *cleanup {
		left, _ := natlab.Leftovers(natlab.BasePrefix)
		if err := natlab.Cleanup(natlab.BasePrefix); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %d leftovers\n", len(left))
		return nil
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("lab: own binary: %w", err)
	}
	var names []string
	if *profiles != "" {
		names = strings.Split(*profiles, ",")
	} else {
		for _, p := range natlab.Profiles() {
			names = append(names, p.Name)
		}
	}
	var cells []natlab.Cell
	for _, a := range names {
		for _, b := range names {
			cells = append(cells, natlab.Cell{A: a, B: b})
		}
	}
	if *sameNAT {
		for _, a := range names {
			if a != "public" {
				cells = append(cells, natlab.Cell{A: a, SameNAT: true})
			}
		}
	}
	mc := natlab.MatrixConfig{
		Binary: bin, Profiles: names, Cells: cells, Trials: *trials, Timeout: *timeout, LogDir: *logDir,
		Delay: delayline.LinkConfig{Delay: *delay, Jitter: *jitter, Loss: *loss},
		OnResult: func(tr natlab.TrialResult) {
			status := "ok"
			if !tr.OK {
				status = "FAIL " + tr.Reason
			}
			fmt.Fprintf(stderr, "lab: %s x %s trial %d: %s\n", tr.A, tr.B, tr.Trial+1, status)
		},
	}
	if *prime > 0 {
		mc.ConnectArgs = []string{"--prime-ttl", fmt.Sprint(*prime)}
	}
	res, err := natlab.RunMatrix(ctx, mc)
	if res != nil {
		if *jsonOut {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(res); jerr != nil {
				return jerr
			}
		} else {
			fmt.Fprintf(stdout, "icetcp lab: %d trials per cell, one-way delay %v per peer link (A-B RTT %v)\n\n", *trials, *delay, 2**delay)
			if terr := res.Table(stdout); terr != nil {
				return terr
			}
		}
	}
	return err
}
