package candidate

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseMarshalRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Candidate
		// canonical is what Marshal writes for want.
		canonical string
	}{
		{
			name: "host active ipv4 with a= prefix",
			in:   "a=candidate:1 1 TCP 2021655551 127.0.0.1 9 typ host tcptype active",
			want: Candidate{Foundation: "1", Component: 1, Priority: 2021655551,
				Addr: netip.MustParseAddrPort("127.0.0.1:9"), Type: Host, TCPType: Active},
			canonical: "candidate:1 1 TCP 2021655551 127.0.0.1 9 typ host tcptype active",
		},
		{
			name: "host passive ipv6 lowercase transport, no prefix",
			in:   "7 1 tcp 1671430143 2001:db8::1 54321 typ host tcptype passive",
			want: Candidate{Foundation: "7", Component: 1, Priority: 1671430143,
				Addr: netip.MustParseAddrPort("[2001:db8::1]:54321"), Type: Host, TCPType: Passive},
			canonical: "candidate:7 1 TCP 1671430143 2001:db8::1 54321 typ host tcptype passive",
		},
		{
			name: "mixed-case transport and values",
			in:   "candidate:abc+/ 2 Tcp 5 10.0.0.1 4000 typ HOST tcptype SO",
			want: Candidate{Foundation: "abc+/", Component: 2, Priority: 5,
				Addr: netip.MustParseAddrPort("10.0.0.1:4000"), Type: Host, TCPType: SO},
			canonical: "candidate:abc+/ 2 TCP 5 10.0.0.1 4000 typ host tcptype so",
		},
		{
			name: "srflx so, tcptype after raddr",
			in:   "candidate:2 1 TCP 1239416831 198.51.100.7 61000 typ srflx raddr 192.168.1.10 rport 50000 tcptype so",
			want: Candidate{Foundation: "2", Component: 1, Priority: 1239416831,
				Addr: netip.MustParseAddrPort("198.51.100.7:61000"), Type: ServerReflexive, TCPType: SO,
				Related: netip.MustParseAddrPort("192.168.1.10:50000")},
			canonical: "candidate:2 1 TCP 1239416831 198.51.100.7 61000 typ srflx raddr 192.168.1.10 rport 50000 tcptype so",
		},
		{
			name: "srflx passive, tcptype before raddr (pion's order)",
			in:   "candidate:2 1 tcp 1231028223 198.51.100.7 61000 typ srflx tcptype passive raddr 192.168.1.10 rport 50000",
			want: Candidate{Foundation: "2", Component: 1, Priority: 1231028223,
				Addr: netip.MustParseAddrPort("198.51.100.7:61000"), Type: ServerReflexive, TCPType: Passive,
				Related: netip.MustParseAddrPort("192.168.1.10:50000")},
			canonical: "candidate:2 1 TCP 1231028223 198.51.100.7 61000 typ srflx raddr 192.168.1.10 rport 50000 tcptype passive",
		},
		{
			name: "chrome srflx with raddr 0.0.0.0 rport 0",
			in:   "candidate:842163049 1 tcp 1518149375 203.0.113.9 9 typ srflx raddr 0.0.0.0 rport 0 tcptype active generation 0",
			want: Candidate{Foundation: "842163049", Component: 1, Priority: 1518149375,
				Addr: netip.MustParseAddrPort("203.0.113.9:9"), Type: ServerReflexive, TCPType: Active,
				Related: netip.MustParseAddrPort("0.0.0.0:0"),
				Ext:     []Extension{{"generation", "0"}}},
			canonical: "candidate:842163049 1 TCP 1518149375 203.0.113.9 9 typ srflx raddr 0.0.0.0 rport 0 tcptype active generation 0",
		},
		{
			name: "ipv6 relay with ipv6 raddr",
			in:   "candidate:r1 1 TCP 10485759 2001:db8::77 3478 typ relay raddr 2001:db8::5 rport 40000 tcptype passive",
			want: Candidate{Foundation: "r1", Component: 1, Priority: 10485759,
				Addr: netip.MustParseAddrPort("[2001:db8::77]:3478"), Type: Relay, TCPType: Passive,
				Related: netip.MustParseAddrPort("[2001:db8::5]:40000")},
			canonical: "candidate:r1 1 TCP 10485759 2001:db8::77 3478 typ relay raddr 2001:db8::5 rport 40000 tcptype passive",
		},
		{
			name: "unknown extensions kept in order, tcptype among them",
			in:   "candidate:9 1 TCP 1 10.0.0.2 5000 typ prflx generation 0 network-id 1 tcptype so network-cost 10 ufrag abcd",
			want: Candidate{Foundation: "9", Component: 1, Priority: 1,
				Addr: netip.MustParseAddrPort("10.0.0.2:5000"), Type: PeerReflexive, TCPType: SO,
				Ext: []Extension{{"generation", "0"}, {"network-id", "1"}, {"network-cost", "10"}, {"ufrag", "abcd"}}},
			canonical: "candidate:9 1 TCP 1 10.0.0.2 5000 typ prflx tcptype so generation 0 network-id 1 network-cost 10 ufrag abcd",
		},
		{
			name: "active port normalised to 9, zone and surrounding space dropped",
			in:   "  a=candidate:3 1 TCP 77 fe80::1%eth0 43210 typ host tcptype active\r\n",
			want: Candidate{Foundation: "3", Component: 1, Priority: 77,
				Addr: netip.MustParseAddrPort("[fe80::1]:9"), Type: Host, TCPType: Active},
			canonical: "candidate:3 1 TCP 77 fe80::1 9 typ host tcptype active",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustParse(t, tc.in)
			if !got.Equal(tc.want) {
				t.Fatalf("Parse:\n got %#v\nwant %#v", got, tc.want)
			}
			m := got.Marshal()
			if m != tc.canonical {
				t.Errorf("Marshal:\n got %s\nwant %s", m, tc.canonical)
			}
			if s := got.String(); s != m {
				t.Errorf("String() = %q, Marshal() = %q", s, m)
			}
			again := mustParse(t, m)
			if !again.Equal(got) {
				t.Errorf("Parse(Marshal) = %#v, want %#v", again, got)
			}
			// With and without the a= prefix the same value comes back.
			if c := mustParse(t, "a="+m); !c.Equal(got) {
				t.Errorf("a= prefix: %#v", c)
			}
			if c := mustParse(t, strings.TrimPrefix(m, "candidate:")); !c.Equal(got) {
				t.Errorf("bare value: %#v", c)
			}
		})
	}
}

// Lines as other implementations write them.
func TestParseWildLines(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		addr   string
		typ    Type
		tt     TCPType
		prio   uint32
		exts   []Extension
		relate string
	}{
		{
			name: "libnice",
			line: "a=candidate:1 1 TCP 2021655551 127.0.0.1 9 typ host tcptype active",
			addr: "127.0.0.1:9", typ: Host, tt: Active, prio: 2021655551,
		},
		{
			name: "chrome active",
			line: "candidate:1052210447 1 tcp 1518280447 192.168.1.10 9 typ host tcptype active generation 0 network-id 1 network-cost 10",
			addr: "192.168.1.10:9", typ: Host, tt: Active, prio: 1518280447,
			exts: []Extension{{"generation", "0"}, {"network-id", "1"}, {"network-cost", "10"}},
		},
		{
			name: "chrome passive ipv6",
			line: "candidate:3432341934 1 tcp 1518214911 2001:db8::1 54321 typ host tcptype passive generation 0 ufrag EsAw network-id 2",
			addr: "[2001:db8::1]:54321", typ: Host, tt: Passive, prio: 1518214911,
			exts: []Extension{{"generation", "0"}, {"ufrag", "EsAw"}, {"network-id", "2"}},
		},
		{
			name: "pion srflx order (tcptype before raddr)",
			line: "candidate:3495413937 1 tcp 1235222527 198.51.100.7 9 typ srflx tcptype active raddr 10.0.0.2 rport 0",
			addr: "198.51.100.7:9", typ: ServerReflexive, tt: Active, prio: 1235222527, relate: "10.0.0.2:0",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.line)
			if c.Addr != netip.MustParseAddrPort(tc.addr) || c.Type != tc.typ || c.TCPType != tc.tt || c.Priority != tc.prio {
				t.Errorf("got %v %v %v %d, want %v %v %v %d", c.Addr, c.Type, c.TCPType, c.Priority, tc.addr, tc.typ, tc.tt, tc.prio)
			}
			if !slices.Equal(c.Ext, tc.exts) {
				t.Errorf("Ext = %v, want %v", c.Ext, tc.exts)
			}
			if tc.relate != "" && c.Related != netip.MustParseAddrPort(tc.relate) {
				t.Errorf("Related = %v, want %v", c.Related, tc.relate)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const ok = "1 1 TCP 2021655551 127.0.0.1 9 typ host tcptype active"
	tests := []struct {
		name  string
		line  string
		field string
		is    error // checked with errors.Is when set
	}{
		{"empty", "", "foundation", ErrMissing},
		{"only prefix", "a=candidate:", "foundation", ErrMissing},
		{"wrong attribute", "a=ice-ufrag:abcd", "prefix", nil},
		{"bad foundation char", "a=candidate:1:2 1 TCP 1 127.0.0.1 9 typ host tcptype active", "foundation", nil},
		{"foundation too long", strings.Repeat("f", 33) + " 1 TCP 1 127.0.0.1 9 typ host tcptype active", "foundation", nil},
		{"missing component", "1", "component", ErrMissing},
		{"component 0", "1 0 TCP 1 127.0.0.1 9 typ host tcptype active", "component", nil},
		{"component 257", "1 257 TCP 1 127.0.0.1 9 typ host tcptype active", "component", nil},
		{"component 70000", "1 70000 TCP 1 127.0.0.1 9 typ host tcptype active", "component", nil},
		{"component not a number", "1 x TCP 1 127.0.0.1 9 typ host tcptype active", "component", nil},
		{"udp", "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", "transport", ErrUnsupportedTransport},
		{"ssltcp", "1 1 ssltcp 1 127.0.0.1 443 typ host tcptype passive", "transport", ErrUnsupportedTransport},
		{"missing transport", "1 1", "transport", ErrMissing},
		{"missing priority", "1 1 TCP", "priority", ErrMissing},
		{"priority overflow", "1 1 TCP 4294967296 127.0.0.1 9 typ host tcptype active", "priority", nil},
		{"priority above 2^31-1", "1 1 TCP 2147483648 127.0.0.1 9 typ host tcptype active", "priority", nil},
		{"priority negative", "1 1 TCP -1 127.0.0.1 9 typ host tcptype active", "priority", nil},
		{"priority abc", "1 1 TCP abc 127.0.0.1 9 typ host tcptype active", "priority", nil},
		{"missing address", "1 1 TCP 1", "address", ErrMissing},
		{"bad ip", "1 1 TCP 1 127.0.0.300 9 typ host tcptype active", "address", nil},
		{"mdns", "1 1 TCP 1 abc.local 9 typ host tcptype active", "address", ErrFQDN},
		{"fqdn", "1 1 TCP 1 turn.example.com 3478 typ relay tcptype passive", "address", ErrFQDN},
		{"missing port", "1 1 TCP 1 127.0.0.1", "port", ErrMissing},
		{"port 65536", "1 1 TCP 1 127.0.0.1 65536 typ host tcptype passive", "port", nil},
		{"missing typ", "1 1 TCP 1 127.0.0.1 9", "typ", ErrMissing},
		{"typ keyword wrong", "1 1 TCP 1 127.0.0.1 9 type host tcptype active", "typ", nil},
		{"missing typ value", "1 1 TCP 1 127.0.0.1 9 typ", "typ", ErrMissing},
		{"unknown typ", "1 1 TCP 1 127.0.0.1 9 typ stun tcptype active", "typ", nil},
		{"raddr without rport", "1 1 TCP 1 198.51.100.7 9 typ srflx raddr 10.0.0.2 tcptype active", "rport", nil},
		{"raddr at end", "1 1 TCP 1 198.51.100.7 9 typ srflx tcptype active raddr 10.0.0.2", "rport", ErrMissing},
		{"raddr without value", "1 1 TCP 1 198.51.100.7 9 typ srflx tcptype active raddr", "raddr", ErrMissing},
		{"rport without value", "1 1 TCP 1 198.51.100.7 9 typ srflx tcptype active raddr 10.0.0.2 rport", "rport", ErrMissing},
		{"rport without raddr", "1 1 TCP 1 198.51.100.7 9 typ srflx rport 5 tcptype active", "rport", nil},
		{"bad raddr", "1 1 TCP 1 198.51.100.7 9 typ srflx raddr 10.0.0 rport 5 tcptype active", "raddr", nil},
		{"mdns raddr", "1 1 TCP 1 198.51.100.7 9 typ srflx raddr x.local rport 5 tcptype active", "raddr", ErrFQDN},
		{"bad rport", "1 1 TCP 1 198.51.100.7 9 typ srflx raddr 10.0.0.2 rport 99999 tcptype active", "rport", nil},
		{"duplicate raddr", "1 1 TCP 1 198.51.100.7 9 typ srflx raddr 10.0.0.2 rport 5 raddr 10.0.0.3 rport 5 tcptype active", "raddr", nil},
		{"missing tcptype", "1 1 TCP 1 127.0.0.1 9 typ host", "tcptype", ErrMissing},
		{"missing tcptype with extensions", "1 1 TCP 1 127.0.0.1 9 typ host generation 0", "tcptype", ErrMissing},
		{"tcptype without value", "1 1 TCP 1 127.0.0.1 9 typ host tcptype", "tcptype", ErrMissing},
		{"unknown tcptype", "1 1 TCP 1 127.0.0.1 9 typ host tcptype both", "tcptype", nil},
		{"duplicate tcptype", "1 1 TCP 1 127.0.0.1 9 typ host tcptype active tcptype passive", "tcptype", nil},
		{"odd extension tokens", ok + " generation 0 network-id", "extension", ErrMissing},
		{"huge line", ok + strings.Repeat(" generation 0", 1000), "line", ErrTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.line)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error", tc.line, c)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Field != tc.field {
				t.Errorf("Field = %q, want %q (%v)", pe.Field, tc.field, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if !strings.HasPrefix(err.Error(), "candidate: ") {
				t.Errorf("message %q lacks the package prefix", err)
			}
		})
	}
}

func TestParseErrorMessage(t *testing.T) {
	_, err := Parse("1 1 TCP abc 127.0.0.1 9 typ host tcptype active")
	want := `candidate: bad priority "abc": strconv.ParseUint: parsing "abc": invalid syntax`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	_, err = Parse("1 1 UDP 1 127.0.0.1 9 typ host")
	want = `candidate: bad transport "UDP": unsupported transport`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if got := (&ParseError{Field: "typ", Value: "x"}).Error(); got != `candidate: bad typ "x"` {
		t.Errorf("nil cause: %q", got)
	}
}

// Marshal never writes an extension that would make its own line unparsable.
func TestMarshalSkipsBadExtensions(t *testing.T) {
	c := New(Host, Passive, netip.MustParseAddrPort("10.0.0.1:4000"), netip.AddrPort{}, netip.Addr{}, 8191)
	c.Ext = []Extension{{"generation", "0"}, {"", "x"}, {"k", ""}, {"tcptype", "active"}, {"a b", "c"}, {"ufrag", "x\ty"}, {"network-id", "1"}}
	got := mustParse(t, c.Marshal())
	want := []Extension{{"generation", "0"}, {"network-id", "1"}}
	if !slices.Equal(got.Ext, want) || got.TCPType != Passive {
		t.Errorf("Ext = %v, TCPType %v; want %v, passive", got.Ext, got.TCPType, want)
	}
}

func TestTypeString(t *testing.T) {
	for typ, want := range map[Type]string{Host: "host", ServerReflexive: "srflx", PeerReflexive: "prflx", Relay: "relay", 7: "Type(7)"} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", typ, got, want)
		}
	}
}
