package natlab

import (
	"net/netip"
	"strings"
	"testing"
)

func TestProfileCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Profiles() {
		if seen[p.Name] {
			t.Errorf("duplicate profile %s", p.Name)
		}
		seen[p.Name] = true
		if p.Description == "" || strings.Contains(p.Description, "\n") {
			t.Errorf("%s: description must be one line", p.Name)
		}
		if p.NAT != (p.Rules != "") {
			t.Errorf("%s: NAT=%v but rules %q", p.Name, p.NAT, p.Rules)
		}
		rs, err := p.Ruleset(RulesData{Table: "itlx", WAN: "itlxt", LAN: "itlxbr", WANAddr: netip.MustParseAddr("203.0.113.1")})
		if err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		if p.NAT && !strings.Contains(rs, "table ip itlx {") {
			t.Errorf("%s: table name not from the run prefix:\n%s", p.Name, rs)
		}
		if q, err := ProfileByName(p.Name); err != nil || q.Name != p.Name {
			t.Errorf("ProfileByName(%s) = %v, %v", p.Name, q.Name, err)
		}
	}
	for _, want := range []string{"preserve-rst", "preserve-drop", "eim-remap", "symmetric", "no-simopen", "udp-blocked", "tcp443-only", "public", "nested", "nested-remap"} {
		if !seen[want] {
			t.Errorf("missing profile %s", want)
		}
	}
	if _, err := ProfileByName("nope"); err == nil || !strings.Contains(err.Error(), "preserve-rst") {
		t.Errorf("unknown profile error %v should list the catalogue", err)
	}
}
