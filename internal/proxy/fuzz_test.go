package proxy

import (
	"strings"
	"testing"
)

// FuzzParseResponse: any bytes a proxy sends parse or fail with an error,
// never a panic; what parses has a three-digit status and text fit for an
// error message, and the head HeadEnd finds parses the same as the whole.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\n",
		"HTTP/1.0 200\r\n\r\n",
		"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\nProxy-Authenticate: NTLM\r\n\r\n",
		"HTTP/1.1 403 Forbidden\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\n\r\n",
		"HTTP/1.1 503 Service Unavailable\n\n",
		"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
		"\x05\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end := HeadEnd(b)
		if end > len(b) || end == 0 || end < -1 {
			t.Fatalf("HeadEnd = %d for %d bytes", end, len(b))
		}
		r, err := ParseResponse(b)
		if err != nil {
			return
		}
		if r.Status < 100 || r.Status > 999 {
			t.Fatalf("status %d", r.Status)
		}
		for _, s := range append([]string{r.Reason, r.ProxyError, r.describe()}, r.Authenticate...) {
			if strings.ContainsFunc(s, func(c rune) bool { return c < 0x20 || c > 0x7e }) {
				t.Fatalf("unprintable text %q", s)
			}
		}
		if end > 0 {
			h, err := ParseResponse(b[:end])
			if err != nil || h.Status != r.Status || h.Reason != r.Reason {
				t.Fatalf("head parses as %+v, %v; whole as %+v", h, err, r)
			}
		}
	})
}
