//go:build lab

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/natlab"
)

// labCmd builds the namespace NAT lab for every pair of profiles, runs
// `icetcp connect` between the two peers a number of times and prints the
// matrix: success rate, winning path, connect times and failure reasons.
func labCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "nats-server" {
		return labNATSCmd(ctx, args[1:], stderr)
	}
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = commandUsage(fs, "lab", labHelp)
	profiles := fs.String("profiles", "", "comma-separated NAT profiles for rows and columns (default: all; see --list)")
	rowList := fs.String("rows", "", "comma-separated NAT profiles for the rows (A) only; --profiles are then the columns (B)")
	relayName := fs.String("relay", "embedded", "TURN relay in the server namespace, given to every connect with --turn:\n"+
		"embedded (icetcp serve's, with an RFC 5780 alternate address), coturn (turnserver; serve runs the rendezvous only), or off")
	counterfactual := fs.Bool("counterfactual", false, "run every trial that ends on a relayed pair again with --await-direct and report both times")
	counterTrials := fs.Int("counterfactual-trials", 0, "with --counterfactual, at most this many await-direct trials per cell (0: all; each waits out the direct checks, ~10 s)")
	jsonFile := fs.String("json-file", "", "also write the result as JSON to this file (the table still goes to stdout)")
	proxyList := fs.String("proxies", "squid-auth", "for proxy-only peers: comma-separated proxies on their gateway, one per trial in turn:\n"+
		"squid (HTTP CONNECT), squid-auth (HTTP CONNECT with Basic credentials), dante (SOCKS5), dante-auth (SOCKS5 with username/password)")
	room := fs.Bool("room", false, "connect with --room NAME (unauthenticated, in the clear) instead of a fresh --secret per trial")
	trials := fs.Int("trials", 3, "trials per cell")
	delayList := fs.String("delay", "20ms", "comma-separated one-way delays of each peer's WAN link, one matrix each (A-B RTT is twice the delay), e.g. 0,1ms,5ms,20ms,100ms")
	jitter := fs.Duration("jitter", 0, "uniform jitter added to each packet's delay")
	loss := fs.Float64("loss", 0, "packet loss probability per link (0..1)")
	timeout := fs.Duration("timeout", 40*time.Second, "bound on one trial")
	sameNAT := fs.Bool("same-nat", true, "add a row of cells with both peers behind one NAT of each profile")
	sameSegment := fs.Bool("same-segment", false, "no router between the gateways: the delay line passes TTLs unchanged")
	maxFailures := fs.Int("max-failures", 0, "end a cell after this many failed trials (0: run them all)")
	prime := fs.Int("prime-ttl", 0, "pass --prime-ttl N to every connect (low-TTL SYN priming)")
	session := fs.Bool("session", true, "the session layer in every connect (relay first, direct when found); --session=false passes --session=false")
	jsonOut := fs.Bool("json", false, "print the result as JSON")
	logDir := fs.String("log-dir", "", "write both sides' stderr of failed trials here (set ICETCP_LOG=debug for agent logs)")
	logSlower := fs.Duration("log-slower", 0, "with --log-dir, also keep the logs of successful trials slower than this")
	load := fs.Int("load", 0, "run N busy processes beside the lab for the whole run (a busy host, as yes >/dev/null N times is); removed on exit")
	list := fs.Bool("list", false, "list the NAT profiles and exit")
	cleanup := fs.Bool("cleanup", false, "remove namespaces and devices left by earlier runs and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *load < 0 {
		return usageErr("--load %d: want a number of busy processes, 0 or more", *load)
	}
	delays, err := parseDelays(*delayList)
	if err != nil {
		return err
	}
	relay, err := natlab.ParseRelay(*relayName)
	if err != nil {
		return usageErr("--relay: %v", err)
	}
	proxies, err := natlab.ParseProxyKinds(*proxyList)
	if err != nil {
		return usageErr("--proxies: %v", err)
	}
	if *list {
		for _, p := range append(natlab.Profiles(), natlab.ProxyProfiles()...) {
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
	names := splitList(*profiles)
	if names == nil {
		for _, p := range natlab.Profiles() {
			names = append(names, p.Name)
		}
	}
	rows := splitList(*rowList)
	if rows == nil {
		rows = names
	}
	var cells []natlab.Cell
	for _, a := range rows {
		for _, b := range names {
			cells = append(cells, natlab.Cell{A: a, B: b})
		}
	}
	if *sameNAT {
		for _, a := range rows {
			if a != "public" {
				cells = append(cells, natlab.Cell{A: a, SameNAT: true})
			}
		}
	}
	mc := natlab.MatrixConfig{
		Binary: bin, Rows: rows, Profiles: names, Cells: cells, Trials: *trials, Timeout: *timeout, LogDir: *logDir, LogSlower: *logSlower,
		SameSegment: *sameSegment, MaxFailures: *maxFailures, Relay: relay, Counterfactual: *counterfactual, CounterfactualTrials: *counterTrials, Room: *room,
		Proxies: proxies, Load: *load,
		OnResult: func(tr natlab.TrialResult) {
			status := fmt.Sprintf("ok %s %.0f ms", tr.Path, tr.ConnectMs)
			if !tr.OK {
				status = "FAIL " + tr.Reason
			}
			if tw := tr.AwaitDirect; tw != nil {
				if tw.OK {
					status += fmt.Sprintf("; await-direct %s %.0f ms", tw.Path, tw.ConnectMs)
				} else {
					status += "; await-direct FAIL " + tw.Reason
				}
			}
			fmt.Fprintf(stderr, "lab: %s x %s trial %d: %s\n", tr.A, tr.B, tr.Trial+1, status)
		},
	}
	if *prime > 0 {
		mc.ConnectArgs = []string{"--prime-ttl", fmt.Sprint(*prime)}
	}
	mc.ConnectArgs = append(mc.ConnectArgs, "--session="+strconv.FormatBool(*session))
	var results []*natlab.MatrixResult
	var runErr error
	for _, d := range delays {
		mc.Delay = delayline.LinkConfig{Delay: d, Jitter: *jitter, Loss: *loss}
		res, err := natlab.RunMatrix(ctx, mc)
		if res != nil {
			results = append(results, res)
		}
		if err != nil {
			runErr = err
			break
		}
	}
	if *jsonFile != "" {
		if err := writeJSONFile(*jsonFile, results); err != nil {
			return errors.Join(runErr, err)
		}
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
		return runErr
	}
	for i, res := range results {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "icetcp lab: %d trials per cell, one-way delay %v per peer link (A-B RTT %v), relay %s%s\n", *trials, res.Delay, 2*res.Delay, res.Relay, loadText(res.Load))
		if *counterfactual {
			fmt.Fprintln(stdout, "counterfactual: trials that ended relayed ran again with --await-direct (\"await\" columns)")
		}
		fmt.Fprintln(stdout)
		if err := res.Table(stdout); err != nil {
			return err
		}
	}
	return runErr
}

// loadText describes --load in the table's title.
func loadText(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return ", under load (1 busy process)"
	}
	return fmt.Sprintf(", under load (%d busy processes)", n)
}

func writeJSONFile(path string, results []*natlab.MatrixResult) error {
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: --json-file: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: --json-file: %w", err)
	}
	return nil
}

// parseDelays reads "0,1ms,5ms": a bare 0 is allowed, other values need a
// unit.
func parseDelays(list string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, usageErr("--delay %q: want comma-separated non-negative durations such as 0,1ms,20ms", list)
		}
		out = append(out, d)
	}
	return out, nil
}
