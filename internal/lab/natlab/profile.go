package natlab

import (
	"fmt"
	"net/netip"
	"strings"
	"text/template"
	"time"
)

// Profile is a NAT (or firewall) behaviour, applied with nftables on the
// gateway in front of a peer. Vocabulary from RFC 4787/5382: mapping is
// endpoint-independent (EIM) when one internal ip:port keeps one external
// ip:port whatever the destination; port preservation means the external
// port equals the internal one.
type Profile struct {
	Name        string
	Description string // one line
	// NAT is false for "public": the peer itself sits on the internet and
	// there is no gateway.
	NAT bool
	// TCP443Only means the gateway passes only outbound TCP to port 443, so
	// the peer must use the server's port-443 aliases (Lab.Signal443,
	// Lab.STUN443) for rendezvous and STUN/TURN.
	TCP443Only bool
	// Rules is the gateway's nftables ruleset, a text/template over
	// RulesData. Empty when NAT is false.
	Rules string
	// Outer, when not "", names the profile of a carrier-grade NAT in
	// front of this gateway: the peer sits behind two NATs, the gateway's
	// WAN side in 100.64.0.0/10 (RFC 6598).
	Outer string
	// Noise, when positive, puts another host on the LAN that opens a new
	// TCP connection through the gateway every Noise on average (to a
	// closed port of the server: one SYN, one RST), as a carrier-grade
	// NAT's other subscribers do: a sequential NAT's series then moves
	// between two connections of the peer.
	Noise time.Duration
}

// RulesData fills a Profile's Rules template.
type RulesData struct {
	Table   string     // nft table name, carries the run prefix
	WAN     string     // the gateway's internet-side interface (a TUN)
	LAN     string     // the gateway's LAN interface (a bridge)
	WANAddr netip.Addr // the gateway's public address
}

// Ruleset renders the profile's nftables ruleset for one gateway.
func (p Profile) Ruleset(d RulesData) (string, error) {
	t, err := template.New(p.Name).Option("missingkey=error").Parse(p.Rules)
	if err != nil {
		return "", fmt.Errorf("natlab: profile %s: %w", p.Name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("natlab: profile %s: %w", p.Name, err)
	}
	return b.String(), nil
}

// The building blocks of the rulesets. nft notes: "fwd" is a keyword, so
// chains are called "forward"; flags go on their own lines.
const (
	natOpen = `table ip {{.Table}} {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
`
	// Linux masquerade keeps the source port when the resulting tuple is
	// free, which for one internal host is always: port-preserving, and
	// therefore endpoint-independent in practice.
	masquerade  = "\t\toifname \"{{.WAN}}\" masquerade\n"
	chainClose  = "\t}\n"
	tableClose  = "}\n"
	inputSilent = `	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname "lo" accept
		iifname "{{.LAN}}" accept
	}
`
)

func natOnly(postrouting string, extra ...string) string {
	return natOpen + postrouting + chainClose + strings.Join(extra, "") + tableClose
}

func forward(policy string, rules ...string) string {
	return "\tchain forward {\n\t\ttype filter hook forward priority filter; policy " + policy + ";\n" +
		"\t\t" + strings.Join(rules, "\n\t\t") + "\n\t}\n"
}

var profiles = []Profile{
	{
		Name:        "preserve-rst",
		Description: "port-preserving masquerade (EIM); unsolicited inbound SYNs answered with RST by the gateway",
		NAT:         true,
		Rules:       natOnly(masquerade),
	},
	{
		Name:        "preserve-drop",
		Description: "port-preserving masquerade (EIM); unsolicited inbound traffic to the gateway silently dropped (RFC 5382 REQ-4 like)",
		NAT:         true,
		Rules:       natOnly(masquerade, inputSilent),
	},
	{
		Name:        "eim-remap",
		Description: "endpoint-independent mapping to a different port (sport xor 0x2000); unsolicited SYNs get RST",
		NAT:         true,
		// Linux "snat to ADDR:LO-HI" is NOT endpoint-independent: the
		// kernel picks a random port in the range for every new
		// connection (see TestSnatRangeIsEndpointDependent), and the
		// "persistent" flag only pins the address, not the port. A port
		// computed from the source port is deterministic, hence EIM, and
		// xor with bit 13 never maps a port onto itself.
		Rules: natOnly("\t\toifname \"{{.WAN}}\" ip protocol tcp snat to {{.WANAddr}} : tcp sport xor 0x2000\n" +
			"\t\toifname \"{{.WAN}}\" ip protocol udp snat to {{.WANAddr}} : udp sport xor 0x2000\n" +
			masquerade),
	},
	{
		Name:        "symmetric",
		Description: "a new random external port for every connection (masquerade fully-random): endpoint-dependent mapping",
		NAT:         true,
		Rules:       natOnly("\t\toifname \"{{.WAN}}\" masquerade fully-random\n"),
	},
	{
		Name:        "no-simopen",
		Description: "preserve-rst, but an inbound SYN matching a reply-direction conntrack entry is dropped (kills SYN-SYN crossing)",
		NAT:         true,
		Rules: natOnly(masquerade, forward("accept",
			`iifname "{{.WAN}}" ct direction reply tcp flags & (syn | ack) == syn drop`)),
	},
	{
		Name:        "udp-blocked",
		Description: "preserve-rst, outbound UDP dropped",
		NAT:         true,
		Rules:       natOnly(masquerade, forward("accept", `iifname "{{.LAN}}" meta l4proto udp drop`)),
	},
	{
		Name:        "tcp443-only",
		Description: "preserve-rst, only outbound TCP to port 443 allowed (server reached on its :443 aliases)",
		NAT:         true,
		TCP443Only:  true,
		Rules: natOnly(masquerade, forward("drop",
			"ct state established,related accept",
			`iifname "{{.LAN}}" tcp dport 443 accept`)),
	},
	{
		Name:        "nested",
		Description: "preserve-rst home NAT behind a preserve-rst carrier-grade NAT (100.64.0.0/10): both port-preserving, EIM",
		NAT:         true,
		Rules:       natOnly(masquerade),
		Outer:       "preserve-rst",
	},
	{
		Name:        "nested-remap",
		Description: "preserve-rst home NAT behind an eim-remap carrier-grade NAT (100.64.0.0/10): EIM, the outer port differs",
		NAT:         true,
		Rules:       natOnly(masquerade),
		Outer:       "eim-remap",
	},
	{
		Name:        "public",
		Description: "no NAT: the peer has a public address on the internet side",
	},
}

// Profiles returns the catalogue, in a stable order: the NATs above, then
// those of port prediction and filtering (profile_predict.go).
func Profiles() []Profile {
	return append(append([]Profile(nil), profiles...), predictProfiles...)
}

// ProfileByName returns the named profile.
func ProfileByName(name string) (Profile, error) {
	all := append(Profiles(), proxyProfiles...)
	for _, p := range all {
		if p.Name == name {
			return p, nil
		}
	}
	names := make([]string, len(all))
	for i, p := range all {
		names[i] = p.Name
	}
	return Profile{}, fmt.Errorf("natlab: unknown profile %q (have %s)", name, strings.Join(names, ", "))
}
