package turn

import (
	"strings"
	"testing"
)

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want URI
	}{
		{"turn:127.0.0.1", URI{"127.0.0.1", 3478, false}},
		{"turn:127.0.0.1:3479?transport=tcp", URI{"127.0.0.1", 3479, false}},
		{"turn:relay.example.com?transport=tcp", URI{"relay.example.com", 3478, false}},
		{"turns:relay.example.com", URI{"relay.example.com", 5349, true}},
		{"turns:relay.example.com:443?transport=tcp", URI{"relay.example.com", 443, true}},
		{"turn:[::1]:3478?transport=tcp", URI{"::1", 3478, false}},
		{"turns:[2001:db8::1]", URI{"2001:db8::1", 5349, true}},
		{"TURN:Relay.Example", URI{"Relay.Example", 3478, false}},
		{"127.0.0.1:3478", URI{"127.0.0.1", 3478, false}},
		{"relay.example:443", URI{"relay.example", 443, false}},
		{"[::1]:9999", URI{"::1", 9999, false}},
	} {
		got, err := ParseURI(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseURI(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if back, err := ParseURI(got.String()); err != nil || back != got {
			t.Errorf("ParseURI(%q.String() = %q) = %+v, %v", tc.in, got.String(), back, err)
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	for _, tc := range []struct{ in, says string }{
		{"turn:relay.example?transport=udp", "transport=udp is not supported"},
		{"turns:relay.example?transport=udp", "transport=udp is not supported"},
		{"stun:relay.example", "STUN"},
		{"turn://relay.example:3478", `no "//"`},
		{"turn:", "host"},
		{"turn:relay.example:0", "port"},
		{"turn:relay.example:65536", "port"},
		{"turn:relay.example:-1", "port"},
		{"turn:relay.example:x", "port"},
		{"turn:user@relay.example", "host"},
		{"turn:relay.example/path", "host"},
		{"turn:relay.example?transport=sctp", "transport"},
		{"turn:relay.example?foo=bar", "query"},
		{"turn:[fe80::1%25eth0]", ""},
		{"relay.example", "want turn:host"},
		{"http://relay.example", "want turn:host"},
		{"", "want turn:host"},
	} {
		u, err := ParseURI(tc.in)
		if err == nil {
			t.Errorf("ParseURI(%q) = %+v, want an error", tc.in, u)
			continue
		}
		if !strings.HasPrefix(err.Error(), "turn: URI ") || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("ParseURI(%q): %q, want it to say %q", tc.in, err, tc.says)
		}
	}
}

func TestURIString(t *testing.T) {
	for _, tc := range []struct {
		u    URI
		want string
	}{
		{URI{"127.0.0.1", 3478, false}, "turn:127.0.0.1:3478?transport=tcp"},
		{URI{"::1", 5349, true}, "turns:[::1]:5349"},
		{URI{"relay.example", 0, true}, "turns:relay.example:5349"},
	} {
		if got := tc.u.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.u, got, tc.want)
		}
	}
}

// FuzzParseURI: no input panics, and whatever parses is a usable server
// address that survives a round trip through String.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"turn:127.0.0.1", "turns:relay.example:443?transport=tcp", "turn:[::1]:3478?transport=tcp",
		"relay.example:3478", "turn:relay.example?transport=udp", "turn://x", "turn:%zz", "turn:[::1",
		"stun:x", "turn:a:1:2", "turn:?transport=tcp", "turn:x?transport=tcp&transport=tcp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "turn: ") {
				t.Fatalf("ParseURI(%q): error %q lacks the package prefix", s, err)
			}
			return
		}
		if u.Port == 0 || checkHost(u.Host) != nil {
			t.Fatalf("ParseURI(%q) = %+v: no usable server", s, u)
		}
		back, err := ParseURI(u.String())
		if err != nil || back != u {
			t.Fatalf("ParseURI(%q) = %+v; ParseURI(%q) = %+v, %v", s, u, u.String(), back, err)
		}
	})
}
