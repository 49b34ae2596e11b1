//go:build linux

package natlab

import (
	"context"
	"errors"
	"fmt"

	"github.com/icetcp/icetcp/internal/lab/natlab/netns"
)

// BlockPeers makes A's gateway drop, silently, every TCP packet between
// the two peers' public addresses, both ways, before connection tracking
// sees it: no direct path between the peers, while the server (rendezvous,
// STUN, the relay) stays reachable. Established direct connections die
// as on a link that went dark: no RST, no FIN. lift removes the rule.
func (l *Lab) BlockPeers(ctx context.Context) (lift func(context.Context) error, err error) {
	if l.GatewayA.NS == "" || l.CarrierA.NS != "" || l.B.Public == l.A.Public {
		return nil, errors.New("natlab: BlockPeers needs A behind a plain gateway and B elsewhere")
	}
	table := l.Prefix + "blk"
	rules := fmt.Sprintf(`table ip %[1]s {
	chain prerouting {
		type filter hook prerouting priority raw; policy accept;
		ip saddr %[2]s meta l4proto tcp drop
		ip daddr %[2]s meta l4proto tcp drop
	}
}
`, table, l.B.Public)
	if err := netns.Exec(ctx, rules, "ip", "netns", "exec", l.GatewayA.NS, "nft", "-f", "-"); err != nil {
		return nil, fmt.Errorf("natlab: block the peers: %w", err)
	}
	return func(ctx context.Context) error {
		if err := netns.Exec(ctx, "", "ip", "netns", "exec", l.GatewayA.NS, "nft", "delete", "table", "ip", table); err != nil {
			return fmt.Errorf("natlab: lift the block between the peers: %w", err)
		}
		return nil
	}, nil
}

// RestartNAT restarts gw (GatewayA or GatewayB, a plain gateway) as a NAT
// that lost its state: its TCP mapping becomes port p -> p xor 0x1000
// (endpoint-independent, every port new) and its connection tracking is
// flushed. Every connection through it dies at its next packet: ours goes
// out from a new port nobody knows, and the far end's reaches no
// mapping, and the gateway answers RST. New connections work.
func (l *Lab) RestartNAT(ctx context.Context, gw Host) error {
	if gw.NS == "" || (gw.NS != l.GatewayA.NS && gw.NS != l.GatewayB.NS) ||
		(gw.NS == l.GatewayA.NS && l.CarrierA.NS != "") || (gw.NS == l.GatewayB.NS && l.CarrierB.NS != "") {
		return fmt.Errorf("natlab: RestartNAT: %q is not a plain gateway of the lab", gw.Name)
	}
	// The profiles' tables are named after the prefix, with a chain
	// "postrouting"; the WAN is the gateway's TUN.
	rules := fmt.Sprintf(`flush chain ip %[1]s postrouting
add rule ip %[1]s postrouting oifname "%[1]st" ip protocol tcp snat to %[2]s : tcp sport xor 0x1000
add rule ip %[1]s postrouting oifname "%[1]st" masquerade
`, l.Prefix, gw.Addr)
	if err := netns.Exec(ctx, rules, "ip", "netns", "exec", gw.NS, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("natlab: restart NAT %s: new mapping: %w", gw.Name, err)
	}
	if err := netns.Exec(ctx, "", "ip", "netns", "exec", gw.NS, "conntrack", "-F"); err != nil {
		return fmt.Errorf("natlab: restart NAT %s: flush conntrack (apt-get install conntrack): %w", gw.Name, err)
	}
	return nil
}
