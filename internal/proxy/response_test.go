package proxy

import (
	"strings"
	"testing"
)

func TestHeadEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", -1},
		{"HTTP/1.1 200 OK\r\n", -1},
		{"HTTP/1.1 200 OK\r\n\r\n", 19},
		{"HTTP/1.1 200 OK\r\n\r\ndata", 19},
		{"HTTP/1.1 200 OK\n\n", 17},
		{"HTTP/1.1 200 OK\r\nA: b\r\n\r\n\n\n", 25},
		{"HTTP/1.0 200 OK\n\nbody\r\n\r\n", 17},
	} {
		if got := HeadEnd([]byte(tc.in)); got != tc.want {
			t.Errorf("HeadEnd(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseResponse(t *testing.T) {
	squid407 := "HTTP/1.1 407 Proxy Authentication Required\r\nServer: squid/5.7\r\n" +
		"X-Squid-Error: ERR_CACHE_ACCESS_DENIED 0\r\nProxy-Authenticate: Basic realm=\"icetcp-test\"\r\n\r\n"
	for _, tc := range []struct {
		name, in string
		want     Response
		describe string
		err      string
	}{
		{name: "established", in: "HTTP/1.1 200 Connection established\r\n\r\n",
			want: Response{Status: 200, Reason: "Connection established"}},
		{name: "HTTP/1.0 without reason", in: "HTTP/1.0 200\r\n\r\n", want: Response{Status: 200}},
		{name: "squid 407", in: squid407,
			want:     Response{Status: 407, Reason: "Proxy Authentication Required", Authenticate: []string{`Basic realm="icetcp-test"`}, ProxyError: "ERR_CACHE_ACCESS_DENIED 0"},
			describe: "Proxy Authentication Required (ERR_CACHE_ACCESS_DENIED 0) (credentials missing or wrong; it accepts Basic)"},
		{name: "NTLM only", in: "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\n\r\n",
			want:     Response{Status: 407, Reason: "Proxy Authentication Required", Authenticate: []string{"NTLM", "Negotiate"}},
			describe: "Proxy Authentication Required (it accepts only NTLM, Negotiate; icetcp offers Basic)"},
		{name: "forbidden port", in: "HTTP/1.1 403 Forbidden\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n\r\n",
			want: Response{Status: 403, Reason: "Forbidden", ProxyError: "ERR_ACCESS_DENIED 0"}, describe: "Forbidden (ERR_ACCESS_DENIED 0)"},
		{name: "LF only", in: "HTTP/1.1 503 Service Unavailable\nX-Squid-Error: ERR_CONNECT_FAIL 111\n\n",
			want: Response{Status: 503, Reason: "Service Unavailable", ProxyError: "ERR_CONNECT_FAIL 111"}},
		{name: "malformed header kept status", in: "HTTP/1.1 403 Forbidden\r\nno colon here\r\n\r\n",
			want: Response{Status: 403, Reason: "Forbidden"}},
		{name: "control bytes dropped", in: "HTTP/1.1 502 Bad\x1b[31m Gateway\r\n\r\n",
			want: Response{Status: 502, Reason: "Bad[31m Gateway"}},
		{name: "SOCKS bytes", in: "\x05\x00\n\n", err: "not an HTTP response"},
		{name: "HTTP/2", in: "HTTP/2 200\r\n\r\n", err: "not an HTTP response"},
		{name: "short code", in: "HTTP/1.1 20 OK\r\n\r\n", err: "status code"},
		{name: "code 099", in: "HTTP/1.1 099 x\r\n\r\n", err: "status code"},
		{name: "too long", in: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxResponseHead) + "\r\n\r\n", err: "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseResponse([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.want.Status || got.Reason != tc.want.Reason || got.ProxyError != tc.want.ProxyError ||
				strings.Join(got.Authenticate, "|") != strings.Join(tc.want.Authenticate, "|") {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if tc.describe != "" && got.describe() != tc.describe {
				t.Errorf("describe = %q, want %q", got.describe(), tc.describe)
			}
		})
	}
}
