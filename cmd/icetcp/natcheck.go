package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/icetcp/icetcp/internal/natcheck"
)

// natcheckCmd measures this host's NAT over TCP against a STUN server
// (best with `icetcp serve --stun-alt-addr`) and prints a summary, or one
// JSON object with --json.
func natcheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("natcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = commandUsage(fs, "natcheck", natcheckHelp)
	stun := fs.String("stun", "", "STUN server HOST:PORT, reached over TCP (required)")
	local := fs.String("local", "", "local IP[:PORT] to probe from (default: any address, a free port)")
	timeout := fs.Duration("timeout", natcheck.DefaultTimeout, "bound on the whole check")
	jsonOut := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *stun == "" {
		return usageErr("--stun HOST:PORT is required")
	}
	cfg := natcheck.Config{Timeout: *timeout, LoggerFactory: quietLogger(stderr, *jsonOut)}
	if *local != "" {
		var err error
		if cfg.Local, err = parseLocal(*local); err != nil {
			return err
		}
	}
	server, err := resolveServer(ctx, *stun, cfg.Local.Addr())
	if err != nil {
		return err
	}
	cfg.Server = server
	res, err := natcheck.Check(ctx, cfg)
	if err != nil {
		if *jsonOut {
			json.NewEncoder(stdout).Encode(map[string]string{"error": err.Error()})
		}
		return err
	}
	if *jsonOut {
		return json.NewEncoder(stdout).Encode(natcheckJSON(res))
	}
	printNatcheck(stdout, res)
	return nil
}

// parseLocal reads --local: IP or IP:PORT.
func parseLocal(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, usageErr("--local %q is neither IP nor IP:PORT", s)
	}
	return netip.AddrPortFrom(ip, 0), nil
}

// resolveServer turns HOST:PORT into an address, of local's family when
// local is set, else preferring IPv4.
func resolveServer(ctx context.Context, hostport string, local netip.Addr) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		return ap, nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, usageErr("--stun %q: %v", hostport, err)
	}
	pn, err := net.DefaultResolver.LookupPort(ctx, "tcp", port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("natcheck: --stun %q: %w", hostport, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("natcheck: --stun %q: %w", hostport, err)
	}
	want4 := !local.IsValid() || local.Unmap().Is4()
	for _, ip := range ips {
		if ip.Unmap().Is4() == want4 {
			return netip.AddrPortFrom(ip.Unmap(), uint16(pn)), nil
		}
	}
	if !local.IsValid() && len(ips) > 0 { // IPv6 only
		return netip.AddrPortFrom(ips[0].Unmap(), uint16(pn)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("natcheck: --stun %q has no address of the family of --local", hostport)
}

func natcheckJSON(r natcheck.Result) map[string]any {
	obs := make([]map[string]any, 0, len(r.Observations))
	for _, o := range r.Observations {
		m := map[string]any{"test": o.Test, "local": o.Local.String(), "server": o.Server.String()}
		if o.Err != "" {
			m["error"] = o.Err
		} else {
			m["mapped"] = o.Mapped.String()
		}
		obs = append(obs, m)
	}
	server := map[string]any{"address": r.Server.Address.String(), "syn_probe": r.Server.SYNProbe, "software": r.Server.Software}
	if r.Server.Origin.IsValid() {
		server["origin"] = r.Server.Origin.String()
	}
	if r.Server.Other.IsValid() {
		server["other"] = r.Server.Other.String()
	}
	notes := r.Notes
	if notes == nil {
		notes = []string{}
	}
	return map[string]any{
		"mapping":         r.Mapping.String(),
		"port_preserving": r.PortPreserving,
		"allocation":      r.Allocation.String(),
		"delta":           r.Delta,
		"inbound_syn":     r.InboundSYN.String(),
		"filtering":       r.Filtering.String(),
		"mapped":          r.Mapped.String(),
		"local":           r.Local.String(),
		"class":           r.Class().String(),
		"server":          server,
		"observations":    obs,
		"notes":           notes,
		"elapsed_ms":      r.Elapsed.Milliseconds(),
	}
}

func printNatcheck(w io.Writer, r natcheck.Result) {
	port := "preserved"
	if !r.PortPreserving {
		port = fmt.Sprintf("not preserved (%d -> %d)", r.Local.Port(), r.Mapped.Port())
	}
	alloc := r.Allocation.Describe()
	if r.Allocation == natcheck.Sequential {
		alloc += fmt.Sprintf(" (step %+d)", r.Delta)
	}
	other := "none (mapping cannot be measured)"
	if r.Server.Other.IsValid() {
		other = r.Server.Other.String()
	}
	probe := "no"
	if r.Server.SYNProbe {
		probe = "yes"
	}
	rows := [][2]string{
		{"STUN server", fmt.Sprintf("%s (alternate %s; SYN probe %s)", r.Server.Address, other, probe)},
		{"local address", r.Local.String()},
		{"mapped address", r.Mapped.String()},
		{"mapping", r.Mapping.Describe()},
		{"port", port},
		{"port allocation", alloc},
		{"inbound SYN", r.InboundSYN.Describe()},
		{"filtering", r.Filtering.Describe()},
		{"class", r.Class().String()},
		{"took", r.Elapsed.Round(time.Millisecond).String()},
	}
	for _, row := range rows {
		fmt.Fprintf(w, "%-16s %s\n", row[0], row[1])
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", strings.TrimSpace(n))
	}
}
