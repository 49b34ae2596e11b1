//go:build linux

package natlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/natlab/netns"
)

func setProcAttr(cmd *exec.Cmd) {
	// Own process group, so a kill reaches children too; SIGKILL if this
	// process dies first, so nothing outlives the lab.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// New builds a lab: namespaces, delay line, gateways with their nftables
// rulesets. On error it removes whatever it had built.
func New(ctx context.Context, cfg Config) (_ *Lab, err error) {
	pa, err := cfg.profile(cfg.A)
	if err != nil {
		return nil, err
	}
	pb, err := cfg.profile(cfg.B)
	if err != nil {
		return nil, err
	}
	if cfg.SameNAT {
		if !pa.NAT {
			return nil, errors.New("natlab: SameNAT needs a NAT profile for A, not public")
		}
		pb = pa
	}
	run, err := netns.NewRun(BasePrefix, cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("natlab: %w", err)
	}
	lc := delayline.Config{Router: RouterAddr}
	if cfg.SameSegment {
		lc.Router = netip.Addr{}
	}
	l := &Lab{Prefix: run.Prefix, run: run, line: delayline.New(lc)}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	b := builder{lab: l, ctx: ctx}

	l.Server = Host{Name: "server", NS: l.Prefix + "-srv", Addr: ServerAddr, Public: ServerAddr}
	if err := b.internetHost(l.Server, "srv", cfg.ServerDelay, ServerAltAddr, Signal443, STUN443); err != nil {
		return nil, err
	}
	if err := b.serverAliases(); err != nil {
		return nil, err
	}

	oa, err := cfg.outer(pa)
	if err != nil {
		return nil, err
	}
	ob, err := cfg.outer(pb)
	if err != nil {
		return nil, err
	}
	if l.A, l.GatewayA, l.CarrierA, err = b.peer("A", "a", pa, oa, 1, cfg.Delay); err != nil {
		return nil, err
	}
	if cfg.SameNAT {
		l.B = Host{Name: "B", NS: l.Prefix + "-pb", Profile: pa.Name,
			Addr: netip.MustParseAddr("10.0.1.3"), Public: l.GatewayA.Public}
		if err := b.lanHost(l.B, l.GatewayA.NS, netip.MustParseAddr("10.0.1.1"), "b"); err != nil {
			return nil, err
		}
	} else if l.B, l.GatewayB, l.CarrierB, err = b.peer("B", "b", pb, ob, 2, cfg.Delay); err != nil {
		return nil, err
	}

	l.ServerRTT = cfg.Delay.Delay + cfg.ServerDelay.Delay
	if !cfg.SameNAT {
		l.RTT = 2 * cfg.Delay.Delay
	}
	l.line.Start()
	return l, nil
}

func (cfg Config) profile(name string) (Profile, error) {
	if name == "" {
		name = "preserve-rst"
	}
	for _, p := range cfg.Custom {
		if p.Name == name {
			return p, nil
		}
	}
	return ProfileByName(name)
}

// outer resolves a nested profile's carrier-grade NAT; nil when p is not
// nested.
func (cfg Config) outer(p Profile) (*Profile, error) {
	if p.Outer == "" {
		return nil, nil
	}
	o, err := cfg.profile(p.Outer)
	if err != nil {
		return nil, fmt.Errorf("natlab: profile %s: outer NAT: %w", p.Name, err)
	}
	if !o.NAT || o.Outer != "" || o.TCP443Only {
		return nil, fmt.Errorf("natlab: profile %s: outer NAT %s must be a plain NAT profile", p.Name, o.Name)
	}
	return &o, nil
}

// builder runs the commands that build a lab; every namespace it creates
// is recorded in the lab first, so Close removes it even halfway.
type builder struct {
	lab *Lab
	ctx context.Context
}

func (b *builder) ns(name string, forward bool) error {
	b.lab.nss = append(b.lab.nss, name)
	if err := netns.Add(b.ctx, name); err != nil {
		return fmt.Errorf("natlab: %w", err)
	}
	// No IPv6: the lab is IPv4, and router solicitations would only be
	// noise on the delay line.
	args := []string{"netns", "exec", name, "sysctl", "-qw",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"}
	if forward {
		args = append(args, "net.ipv4.ip_forward=1")
	}
	return b.exec("", "ip", args...)
}

func (b *builder) exec(stdin, name string, args ...string) error {
	if err := netns.Exec(b.ctx, stdin, name, args...); err != nil {
		return fmt.Errorf("natlab: %w", err)
	}
	return nil
}

// ipBatch runs ip(8) commands, one a line, inside namespace ns.
func (b *builder) ipBatch(ns string, lines ...string) error {
	return b.exec(strings.Join(lines, "\n")+"\n", "ip", "-n", ns, "-batch", "-")
}

// internetHost gives namespace h.NS a TUN on the delay line carrying
// h.Addr (and extra addresses). Its default route is the TUN: the delay
// line is the only way out, and it drops what no lab host claims.
func (b *builder) internetHost(h Host, link string, lc delayline.LinkConfig, extra ...netip.Addr) error {
	if err := b.ns(h.NS, false); err != nil {
		return err
	}
	return b.tun(h.NS, link, lc, h.Addr, extra...)
}

func (b *builder) tun(ns, link string, lc delayline.LinkConfig, addr netip.Addr, extra ...netip.Addr) error {
	dev := b.lab.Prefix + "t"
	f, err := netns.OpenTUN(ns, dev)
	if err != nil {
		return fmt.Errorf("natlab: %w", err)
	}
	all := append([]netip.Addr{addr}, extra...)
	var prefixes []netip.Prefix
	for _, a := range all {
		prefixes = append(prefixes, netip.PrefixFrom(a, 32))
	}
	if err := b.lab.line.AddLink(link, f, prefixes, lc); err != nil {
		return fmt.Errorf("natlab: %w", err)
	}
	lines := []string{
		// The queue between the kernel and the delay line: the default
		// 500 packets is tight at 100 MB/s.
		"link set " + dev + " up txqueuelen 1000",
		"addr add " + addr.String() + "/24 dev " + dev,
	}
	for _, a := range extra {
		lines = append(lines, "addr add "+a.String()+"/32 dev "+dev)
	}
	own := netip.PrefixFrom(addr, 24).Masked()
	for _, p := range []string{"198.51.100.0/24", "203.0.113.0/24"} {
		if p != own.String() { // the /24 address already routes its own net
			lines = append(lines, "route add "+p+" dev "+dev)
		}
	}
	lines = append(lines, "route add default dev "+dev)
	return b.ipBatch(ns, lines...)
}

// lanHost puts h in its own namespace on the gateway's LAN bridge through a
// veth pair created directly in the two namespaces (never in the caller's).
func (b *builder) lanHost(h Host, gwNS string, lanGW netip.Addr, tag string) error {
	if err := b.ns(h.NS, false); err != nil {
		return err
	}
	inPeer, inGW := b.lab.Prefix+"l", b.lab.Prefix+tag
	if err := b.exec("", "ip", "link", "add", inPeer, "netns", h.NS, "type", "veth",
		"peer", "name", inGW, "netns", gwNS); err != nil {
		return err
	}
	if err := b.ipBatch(gwNS, "link set "+inGW+" master "+b.lab.Prefix+"br up"); err != nil {
		return err
	}
	return b.ipBatch(h.NS,
		"link set "+inPeer+" up",
		"addr add "+h.Addr.String()+"/24 dev "+inPeer,
		"route add default via "+lanGW.String())
}

// serverAliases makes the server reachable on port 443 for tcp443-only
// peers without changing what the server listens on.
func (b *builder) serverAliases() error {
	rules := fmt.Sprintf(`table ip %[1]ssrv {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %[2]s tcp dport 443 dnat to %[4]s:8080
		ip daddr %[3]s tcp dport 443 dnat to %[4]s:3478
	}
}
`, b.lab.Prefix, Signal443, STUN443, ServerAddr)
	return b.nft(b.lab.Server.NS, rules)
}

func (b *builder) nft(ns, rules string) error {
	if err := netns.Exec(b.ctx, rules, "ip", "netns", "exec", ns, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("natlab: load ruleset in %s: %w\nruleset:\n%s", ns, err, rules)
	}
	return nil
}

// peer builds peer "A" or "B" (tag "a"/"b", LAN 10.0.<n>.0/24) with its
// gateway, or as a public host when the profile has no NAT. With outer (a
// nested profile) a carrier-grade NAT stands between the gateway and the
// delay line.
func (b *builder) peer(name, tag string, p Profile, outer *Profile, n int, lc delayline.LinkConfig) (peer, gw, carrier Host, err error) {
	peerNS := b.lab.Prefix + "-p" + tag
	if !p.NAT {
		addr := netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + n)})
		peer = Host{Name: name, NS: peerNS, Profile: p.Name, Addr: addr, Public: addr}
		return peer, Host{}, Host{}, b.internetHost(peer, "p"+tag, lc)
	}
	public := netip.AddrFrom4([4]byte{203, 0, 113, byte(n)})
	gw = Host{Name: "gateway-" + name, NS: b.lab.Prefix + "-gw" + tag, Profile: p.Name, Addr: public, Public: public}
	if err := b.ns(gw.NS, true); err != nil {
		return peer, gw, carrier, err
	}
	gwWAN := b.lab.Prefix + "t"
	if outer == nil {
		if err := b.tun(gw.NS, "gw"+tag, lc, public); err != nil {
			return peer, gw, carrier, err
		}
	} else {
		carrier = Host{Name: "carrier-" + name, NS: b.lab.Prefix + "-cg" + tag, Profile: outer.Name, Addr: public, Public: public}
		gw.Addr = netip.AddrFrom4([4]byte{100, 64, byte(n), 2})
		if gwWAN, err = b.carrierNAT(carrier, gw, *outer, n, "cg"+tag, lc); err != nil {
			return peer, gw, carrier, err
		}
	}
	lanGW := netip.AddrFrom4([4]byte{10, 0, byte(n), 1})
	br := b.lab.Prefix + "br"
	if err := b.ipBatch(gw.NS,
		"link add "+br+" type bridge",
		"link set "+br+" up",
		"addr add "+lanGW.String()+"/24 dev "+br); err != nil {
		return peer, gw, carrier, err
	}
	// A switch, not a firewall: with br_netfilter loaded on the host
	// (Docker loads it), frames bridged between two LAN hosts would cross
	// this gateway's IP forward hook, and a profile whose forward policy
	// drops (tcp443-only) would cut a same-NAT LAN in two. The setting is
	// per namespace; -e ignores it when the module is not loaded.
	if err := b.exec("", "ip", "netns", "exec", gw.NS, "sysctl", "-q", "-e", "-w",
		"net.bridge.bridge-nf-call-iptables=0"); err != nil {
		return peer, gw, carrier, err
	}
	peer = Host{Name: name, NS: peerNS, Profile: p.Name,
		Addr: netip.AddrFrom4([4]byte{10, 0, byte(n), 2}), Public: public}
	if err := b.lanHost(peer, gw.NS, lanGW, tag); err != nil {
		return peer, gw, carrier, err
	}
	rules, err := p.Ruleset(RulesData{Table: b.lab.Prefix, WAN: gwWAN, LAN: br, WANAddr: gw.Addr})
	if err != nil {
		return peer, gw, carrier, err
	}
	if err := b.nft(gw.NS, rules); err != nil {
		return peer, gw, carrier, err
	}
	if p.Noise > 0 {
		return peer, gw, carrier, b.startNoise(gw, n, tag, p.Noise)
	}
	return peer, gw, carrier, nil
}

// carrierNAT builds the carrier-grade NAT in front of gateway gw: its own
// namespace on the delay line (link name link) with the public address,
// joined to gw by a veth in 100.64.<n>.0/24, NATting with profile outer.
// It returns the name of gw's WAN interface.
func (b *builder) carrierNAT(cg, gw Host, outer Profile, n int, link string, lc delayline.LinkConfig) (string, error) {
	if err := b.ns(cg.NS, true); err != nil {
		return "", err
	}
	if err := b.tun(cg.NS, link, lc, cg.Addr); err != nil {
		return "", err
	}
	gwSide, cgSide := b.lab.Prefix+"w", b.lab.Prefix+"c"
	inside := netip.AddrFrom4([4]byte{100, 64, byte(n), 1})
	if err := b.exec("", "ip", "link", "add", gwSide, "netns", gw.NS, "type", "veth",
		"peer", "name", cgSide, "netns", cg.NS); err != nil {
		return "", err
	}
	if err := b.ipBatch(cg.NS, "link set "+cgSide+" up", "addr add "+inside.String()+"/24 dev "+cgSide); err != nil {
		return "", err
	}
	if err := b.ipBatch(gw.NS, "link set "+gwSide+" up", "addr add "+gw.Addr.String()+"/24 dev "+gwSide,
		"route add default via "+inside.String()); err != nil {
		return "", err
	}
	rules, err := outer.Ruleset(RulesData{Table: b.lab.Prefix, WAN: b.lab.Prefix + "t", LAN: cgSide, WANAddr: cg.Addr})
	if err != nil {
		return "", err
	}
	return gwSide, b.nft(cg.NS, rules)
}
