package proxy

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "http://10.0.1.1:3128", want: "http://10.0.1.1:3128"},
		{in: "HTTP://proxy.corp", want: "http://proxy.corp:80"},
		{in: "proxy.corp:3128", want: "http://proxy.corp:3128"},
		{in: "10.0.1.1:3128", want: "http://10.0.1.1:3128"},
		{in: "http://alice:s%40cret@10.0.1.1:3128/", want: "http://alice:s%40cret@10.0.1.1:3128"},
		{in: "socks5://10.0.1.1", want: "socks5://10.0.1.1:1080"},
		{in: "socks5h://u:p@[2001:db8::1]:1081", want: "socks5h://u:p@[2001:db8::1]:1081"},
		{in: "https://proxy.corp:443", err: "https:// proxies (TLS to the proxy) are not supported"},
		{in: "ftp://proxy.corp", err: `scheme "ftp"`},
		{in: "http://proxy.corp:0", err: "not in 1-65535"},
		{in: "http://proxy.corp:99999", err: "not in 1-65535"},
		{in: "http://proxy.corp/pac.js", err: "want http://"},
		{in: "http://proxy.corp?x=1", err: "want http://"},
		{in: "http://:3128", err: "want http://"},
		{in: "http://alice:hunter2@proxy corp:3128", err: "want http://"},
		{in: "socks5://" + strings.Repeat("u", 256) + ":p@h", err: "at most 255 bytes"},
	} {
		u, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, %v; want error containing %q", tc.in, u, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Parse(%q): the error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
	}
}

// TestSettingEnvironment: "" reads HTTPS_PROXY, then ALL_PROXY, honours
// NO_PROXY and never proxies loopback; "direct" ignores the environment;
// an explicit URL applies to every target.
func TestSettingEnvironment(t *testing.T) {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"} {
		t.Setenv(k, "")
	}
	pick := func(setting, target string) string {
		t.Helper()
		f, err := Setting(setting)
		if err != nil {
			t.Fatalf("Setting(%q): %v", setting, err)
		}
		u, err := f(target)
		if err != nil {
			t.Fatalf("Setting(%q)(%q): %v", setting, target, err)
		}
		if u == nil {
			return "direct"
		}
		return u.Redacted()
	}
	if got := pick("", "turn.example:443"); got != "direct" {
		t.Errorf("no environment: %s", got)
	}
	t.Setenv("HTTP_PROXY", "http://plain-http-only:8080") // not for tunnels
	if got := pick("", "turn.example:443"); got != "direct" {
		t.Errorf("HTTP_PROXY alone: %s, want direct", got)
	}
	t.Setenv("all_proxy", "socks5://socks.corp")
	if got := pick("", "turn.example:443"); got != "socks5://socks.corp:1080" {
		t.Errorf("all_proxy: %s", got)
	}
	t.Setenv("HTTPS_PROXY", "http://alice:pw@proxy.corp:3128")
	t.Setenv("NO_PROXY", "internal.corp,10.0.0.0/8")
	for target, want := range map[string]string{
		"turn.example:443":       "http://alice:xxxxx@proxy.corp:3128",
		"198.51.100.10:3478":     "http://alice:xxxxx@proxy.corp:3128",
		"turn.internal.corp:443": "direct",
		"10.1.2.3:3478":          "direct",
		"127.0.0.1:3478":         "direct",
		"localhost:3478":         "direct",
		"[::1]:3478":             "direct",
		"[2001:db8::1]:443":      "http://alice:xxxxx@proxy.corp:3128",
	} {
		if got := pick("", target); got != want {
			t.Errorf("environment, %s: %s, want %s", target, got, want)
		}
	}
	if got := pick("direct", "turn.example:443"); got != "direct" {
		t.Errorf("direct: %s", got)
	}
	if got := pick("socks5://10.0.1.1", "127.0.0.1:3478"); got != "socks5://10.0.1.1:1080" {
		t.Errorf("explicit URL, loopback target: %s", got)
	}
	t.Setenv("HTTPS_PROXY", "https://alice:hunter2@proxy.corp")
	if _, err := Setting(""); err == nil || !strings.Contains(err.Error(), "$HTTPS_PROXY") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad HTTPS_PROXY: %v, want an error naming the variable without the password", err)
	}
}
