package candidate

import "testing"

// FuzzParse checks that Parse never panics and that Parse and Marshal agree:
// whatever Parse accepts, Marshal writes a line that parses back to an equal
// candidate, and writing it again gives the same bytes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a=candidate:1 1 TCP 2021655551 127.0.0.1 9 typ host tcptype active",
		"candidate:1052210447 1 tcp 1518280447 192.168.1.10 9 typ host tcptype active generation 0 network-id 1 network-cost 10",
		"candidate:3432341934 1 tcp 1518214911 2001:db8::1 54321 typ host tcptype passive generation 0 ufrag EsAw network-id 2",
		"375738803 1 tcp 1675624447 127.0.0.1 0 typ host tcptype active",
		"375738803 1 tcp 1671430143 127.0.0.1 50000 typ host tcptype passive",
		"candidate:842163049 1 tcp 1518149375 203.0.113.9 9 typ srflx raddr 0.0.0.0 rport 0 tcptype active generation 0",
		"candidate:2 1 TCP 1239416831 198.51.100.7 61000 typ srflx raddr 192.168.1.10 rport 50000 tcptype so",
		"candidate:2 1 tcp 1231028223 198.51.100.7 61000 typ srflx tcptype passive raddr 192.168.1.10 rport 50000",
		"candidate:r1 1 TCP 10485759 2001:db8::77 3478 typ relay raddr 2001:db8::5 rport 40000 tcptype passive",
		"candidate:9 1 TCP 1 10.0.0.2 5000 typ prflx generation 0 network-id 1 tcptype so network-cost 10 ufrag abcd",
		"a=candidate:3 1 TCP 77 fe80::1%eth0 43210 typ host tcptype active\r\n",
		"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
		"1 1 TCP 1 abc.local 9 typ host tcptype active",
		"1 1 TCP 1 ::ffff:10.0.0.1 9 typ host tcptype so",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		m := c.Marshal()
		c2, err := Parse(m)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but Parse(Marshal) = %v on %q", s, err, m)
		}
		if !c2.Equal(c) {
			t.Fatalf("round trip of %q:\n got %#v\nwant %#v", s, c2, c)
		}
		if m2 := c2.Marshal(); m2 != m {
			t.Fatalf("Marshal not stable: %q then %q", m, m2)
		}
	})
}
