package natlab

import (
	"fmt"
	"strings"
	"time"
)

// The profiles of port prediction and endpoint-independent filtering: a NAT
// that gives every new connection the next port of a series (what CGNs and
// many enterprise firewalls do), the same with other subscribers opening
// connections through it, and a full-cone NAT for TCP.

// Sequential allocation in nftables. "snat to ADDR : numgen inc mod N
// offset P" should give P, P+1, ... but nft 1.0.6 hands the generator's
// host-order 32-bit value to the port unconverted: on this machine the
// ports came out byte-swapped (20000, 20001, ... as 8270, 8526, ...: a step
// of 256, checked in the lab). A map from the counter to the port has typed
// values, which nft converts: "numgen inc mod N map { 0 : P, 1 : P+1, ... }".
// The counter counts every new connection through the rule (the NAT chain
// sees only a connection's first packet), whichever LAN host opened it.
const (
	seqFirstPort = 30000
	seqPorts     = 4096 // the series wraps after this many connections
)

// sequentialRule is the postrouting rule of a sequential NAT, delta 1.
func sequentialRule() string {
	var b strings.Builder
	b.WriteString("\t\toifname \"{{.WAN}}\" ip protocol tcp snat to {{.WANAddr}} : numgen inc mod ")
	fmt.Fprintf(&b, "%d map { ", seqPorts)
	for i := range seqPorts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d : %d", i, seqFirstPort+i)
	}
	b.WriteString(" }\n")
	return b.String()
}

// DefaultNoise is the mean interval between the background connections of
// a noisy profile: 50 new connections a second through the NAT, a CGN's
// other subscribers.
const DefaultNoise = 20 * time.Millisecond

// eifRules make a port-preserving masquerade filter independently of the
// endpoint (RFC 4787 §5, RFC 5382 §5): every port a LAN host sends from
// is remembered with the host for two minutes, and a SYN from anyone to
// that port on the WAN address is forwarded to it, as to the host's own
// connection. Ports no LAN host used are still answered with RST by the
// gateway. (The key is the internal port: masquerade preserves it for one
// LAN host, so it is also the external one.)
const eifRules = `table ip {{.Table}} {
	map eif {
		type inet_service : ipv4_addr
		flags dynamic,timeout
		timeout 2m
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "{{.WAN}}" dnat to tcp dport map @eif
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "{{.WAN}}" masquerade
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "{{.LAN}}" oifname "{{.WAN}}" ip protocol tcp update @eif { tcp sport : ip saddr }
	}
}
`

var predictProfiles = []Profile{
	{
		Name:        "sequential",
		Description: "a new external port for every connection, the next of a series (snat numgen inc, delta 1): endpoint-dependent mapping; unsolicited inbound traffic silently dropped (RFC 5382 REQ-4, as CGNs do)",
		NAT:         true,
		Rules:       natOnly(sequentialRule()+masquerade, inputSilent),
	},
	{
		Name:        "sequential-rst",
		Description: "sequential, but unsolicited SYNs answered with RST (the Linux default), which also ends the mapping of a SYN that met one",
		NAT:         true,
		Rules:       natOnly(sequentialRule() + masquerade),
	},
	{
		Name:        "sequential-noisy",
		Description: "sequential with another LAN host opening a connection through the NAT every 20 ms on average (a CGN's other subscribers)",
		NAT:         true,
		Rules:       natOnly(sequentialRule()+masquerade, inputSilent),
		Noise:       DefaultNoise,
	},
	{
		Name:        "eif",
		Description: "port-preserving masquerade (EIM) with endpoint-independent filtering: a SYN from anyone to a mapped port reaches the host (full cone)",
		NAT:         true,
		Rules:       eifRules,
	},
}
