//go:build lab

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/natlab"
	"github.com/icetcp/icetcp/internal/natcheck"
)

// natcheckWant is what `icetcp natcheck` must report behind a profile.
type natcheckWant struct {
	mapping, alloc, syn string
	preserving          bool
	filtering           string // "" means "dependent" (a NAT that refuses or drops the probe)
}

// labNatcheckWants: the expected class per NAT profile of natlab.
//   - Linux masquerade keeps the source port when the tuple is free, so
//     its mapping is endpoint-independent and port-preserving; the gateway
//     answers an unsolicited SYN with RST unless its input policy drops it.
//   - eim-remap maps port p to p^0x2000: endpoint-independent, not
//     preserving; consecutive local ports give consecutive external ones
//     (alloc=seq, step 1; checked in the test).
//   - masquerade fully-random picks a random port for every new
//     connection, even to the same IP on another port: tests I, II and III
//     see three ports, so address-and-port-dependent, random allocation.
//   - no-simopen and udp-blocked differ from preserve-rst in ways a STUN
//     server cannot see (a crossing SYN on a reply-direction entry; UDP).
//   - tcp443-only reaches the server only through its port-443 alias:
//     test II goes to the alternate IP on port 443. With the alternate on
//     the default port (primary+1) nothing listens there and the mapping
//     stays unknown (the other results stand); with the alternate on 443
//     the mapping is measured (second run in the test).
//   - public has no NAT: the probe SYN reaches natcheck's own listener.
//   - the sequential profiles give every connection the next port: tests
//     I, II and III see three ports (address-and-port-dependent), the
//     allocation test a series of step +1 (checked in the test), also
//     behind other connections through the NAT (sequential-noisy: its
//     five connections leave within a few milliseconds, and the smallest
//     step is the NAT's).
//   - eif forwards a SYN from anyone to a mapped port: the probe from the
//     alternate address reaches natcheck's listener through the NAT.
var labNatcheckWants = map[string]natcheckWant{
	"preserve-rst":  {"eim", "preserve", "rst", true, ""},
	"preserve-drop": {"eim", "preserve", "drop", true, ""},
	"eim-remap":     {"eim", "seq", "rst", false, ""},
	"symmetric":     {"apdm", "random", "rst", false, ""},
	"no-simopen":    {"eim", "preserve", "rst", true, ""},
	"udp-blocked":   {"eim", "preserve", "rst", true, ""},
	"tcp443-only":   {"unknown", "preserve", "rst", true, ""},
	"public":        {"nonat", "preserve", "pass", true, "none"},
	"nested":        {"eim", "preserve", "rst", true, ""}, // two preserving masquerades
	"nested-remap":  {"eim", "seq", "rst", false, ""},     // the outer NAT is eim-remap

	"sequential":       {"apdm", "seq", "drop", false, ""},
	"sequential-rst":   {"apdm", "seq", "rst", false, ""},
	"sequential-noisy": {"apdm", "seq", "drop", false, ""},
	"eif":              {"eim", "preserve", "pass", true, "eif"},
}

// TestLabNatcheck runs `icetcp serve --stun-alt-addr` in the lab's server
// namespace and `icetcp natcheck --json` behind every NAT profile, with a
// 20 ms round trip to the server, and checks the class each must give.
func TestLabNatcheck(t *testing.T) {
	needRoot(t)
	t.Setenv("ICETCP_MAIN", "1") // inherited by the processes the lab starts
	t.Cleanup(func() {
		if left, _ := natlab.Leftovers(natlab.BasePrefix); len(left) > 0 {
			t.Errorf("lab left behind: %v", left)
		}
	})
	for _, p := range natlab.Profiles() {
		want, ok := labNatcheckWants[p.Name]
		if !ok {
			t.Errorf("profile %s has no expected natcheck class", p.Name)
			continue
		}
		t.Run(p.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			lab, err := natlab.New(ctx, natlab.Config{A: p.Name, B: "public",
				Delay: delayline.LinkConfig{Delay: 20 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			defer lab.Close()
			stun := netip.AddrPortFrom(natlab.ServerAddr, 3478)
			if p.TCP443Only {
				stun = netip.AddrPortFrom(natlab.STUN443, 443)
			}

			stop := labServe(t, ctx, lab, natlab.ServerAltAddr.String())
			got := labNatcheck(t, ctx, lab, stun)
			checkLabClass(t, p.Name, got, want)

			switch p.Name {
			case "tcp443-only":
				if !strings.Contains(strings.Join(got.Notes, "\n"), "test II to the alternate address 198.51.100.11:443 failed") {
					t.Errorf("notes %q do not say why the mapping is unknown", got.Notes)
				}
				// An alternate on 443 lets test II through the firewall.
				stop()
				labServe(t, ctx, lab, netip.AddrPortFrom(natlab.ServerAltAddr, 443).String())
				got = labNatcheck(t, ctx, lab, stun)
				checkLabClass(t, p.Name+" (alternate on 443)", got, natcheckWant{"eim", "preserve", "rst", true, ""})
			case "preserve-rst":
				// Again from the same local port at once: natcheck closed
				// with RST, so no 4-tuple waits in TIME_WAIT.
				again := labNatcheck(t, ctx, lab, stun, "--local", "0.0.0.0:"+strings.Split(got.Local, ":")[1])
				checkLabClass(t, p.Name+" (same port again)", again, want)
			case "eim-remap":
				if got.Delta != 1 && !crossesRemapBit(got) {
					t.Errorf("eim-remap: alloc step %d, want +1 (p^0x2000 of consecutive ports)", got.Delta)
				}
			case "sequential", "sequential-rst", "sequential-noisy":
				if got.Delta != 1 {
					t.Errorf("%s: alloc step %d, want +1", p.Name, got.Delta)
				}
			}
		})
	}
}

// natcheckOut is the --json object.
type natcheckOut struct {
	Mapping        string   `json:"mapping"`
	PortPreserving bool     `json:"port_preserving"`
	Allocation     string   `json:"allocation"`
	Delta          int      `json:"delta"`
	InboundSYN     string   `json:"inbound_syn"`
	Filtering      string   `json:"filtering"`
	Mapped         string   `json:"mapped"`
	Local          string   `json:"local"`
	Class          string   `json:"class"`
	Notes          []string `json:"notes"`
	ElapsedMs      int      `json:"elapsed_ms"`
	Observations   []struct {
		Test, Local, Mapped string
	} `json:"observations"`
}

// labServe starts `icetcp serve` in the server namespace with the given
// --stun-alt-addr and waits for its banner; stop ends it early (the test's
// end does otherwise).
func labServe(t *testing.T, ctx context.Context, lab *natlab.Lab, alt string) (stop func()) {
	t.Helper()
	cmd := lab.Command(ctx, lab.Server, os.Args[0], "serve",
		"--signal-addr", netip.AddrPortFrom(natlab.ServerAddr, 8080).String(),
		"--stun-addr", netip.AddrPortFrom(natlab.ServerAddr, 3478).String(),
		"--stun-alt-addr", alt)
	startBanner(t, cmd)
	return func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
}

func labNatcheck(t *testing.T, ctx context.Context, lab *natlab.Lab, stun netip.AddrPort, extra ...string) natcheckOut {
	t.Helper()
	cmd := lab.Command(ctx, lab.A, os.Args[0], append([]string{"natcheck", "--stun", stun.String(), "--json"}, extra...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("natcheck: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	var out natcheckOut
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("natcheck output %q: %v", stdout.String(), err)
	}
	t.Logf("%s in %d ms (%d connections); notes %q", out.Class, out.ElapsedMs, len(out.Observations), out.Notes)
	if os.Getenv("NATCHECK_OBS") != "" {
		t.Logf("observations %+v", out.Observations)
	}
	return out
}

func checkLabClass(t *testing.T, name string, got natcheckOut, want natcheckWant) {
	t.Helper()
	filtering := want.filtering
	if filtering == "" {
		filtering = "dependent"
	}
	if got.Mapping != want.mapping || got.Allocation != want.alloc || got.InboundSYN != want.syn ||
		got.PortPreserving != want.preserving || got.Filtering != filtering {
		t.Errorf("%s: %s (preserving %v, filtering %s), want mapping=%s alloc=%s syn=%s preserving=%v filtering=%s; observations %+v",
			name, got.Class, got.PortPreserving, got.Filtering, want.mapping, want.alloc, want.syn, want.preserving, filtering, got.Observations)
	}
	c, err := natcheck.ParseClass(got.Class)
	if err != nil || c.String() != got.Class || c.Mapping.String() != got.Mapping {
		t.Errorf("%s: class %q does not round-trip: %+v %v", name, got.Class, c, err)
	}
}

// crossesRemapBit reports whether the allocation test's local ports
// straddle a multiple of 0x2000, where p^0x2000 jumps instead of stepping.
func crossesRemapBit(o natcheckOut) bool {
	var ports []uint16
	for _, ob := range o.Observations {
		if ob.Test == "alloc" {
			ports = append(ports, netip.MustParseAddrPort(ob.Local).Port())
		}
	}
	for i := 1; i < len(ports); i++ {
		if ports[i]&0x2000 != ports[0]&0x2000 {
			return true
		}
	}
	return false
}
