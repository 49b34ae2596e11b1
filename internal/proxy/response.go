package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
)

// maxResponseHead bounds the proxy's answer to CONNECT up to its blank
// line: a status line and a few headers (squid's 407 head is ~450 bytes).
const maxResponseHead = 16 << 10

// Response is the head of a proxy's answer to CONNECT.
type Response struct {
	Status int    // 200 for an open tunnel (any 2xx)
	Reason string // the reason phrase, possibly empty
	// Authenticate lists the Proxy-Authenticate challenges of a 407
	// ("Basic realm=\"corp\"", "NTLM", "Negotiate").
	Authenticate []string
	// ProxyError is a proxy's own diagnostic, e.g. squid's X-Squid-Error
	// ("ERR_CONNECT_FAIL 111").
	ProxyError string
}

// OK reports a 2xx answer: the tunnel is open (RFC 9110 §9.3.6).
func (r Response) OK() bool { return r.Status >= 200 && r.Status < 300 }

// HeadEnd returns the length of the response head at the start of b,
// through the empty line that ends it (CRLF CRLF, or LF LF from lax
// proxies), or -1 when b does not hold all of it yet.
func HeadEnd(b []byte) int {
	end := -1
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		end = i + 4
	}
	if i := bytes.Index(b, []byte("\n\n")); i >= 0 && (end < 0 || i+2 < end) {
		end = i + 2
	}
	return end
}

var errNotHTTP = errors.New("not an HTTP response")

// ParseResponse parses a response head (as HeadEnd delimits it): a status
// line "HTTP/1.x NNN reason" and header fields. It is pure: no I/O, bounded
// work, an error rather than a panic on any input.
func ParseResponse(head []byte) (Response, error) {
	if len(head) > maxResponseHead {
		return Response{}, fmt.Errorf("response head of %d bytes exceeds %d", len(head), maxResponseHead)
	}
	line, rest, _ := bytes.Cut(head, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	proto, status, ok := strings.Cut(string(line), " ")
	if !ok || (proto != "HTTP/1.1" && proto != "HTTP/1.0") {
		return Response{}, fmt.Errorf("%w: status line %q", errNotHTTP, quoteShort(line))
	}
	code, reason, _ := strings.Cut(status, " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 || n < 100 {
		return Response{}, fmt.Errorf("%w: status code %q", errNotHTTP, quoteShort([]byte(code)))
	}
	r := Response{Status: n, Reason: printable(reason)}
	// Header fields only add detail to the status: a malformed one does
	// not hide a 407, so what parses before it is kept and the rest
	// ignored.
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(rest))).ReadMIMEHeader()
	for _, v := range h.Values("Proxy-Authenticate") {
		r.Authenticate = append(r.Authenticate, printable(v))
	}
	r.ProxyError = printable(h.Get("X-Squid-Error"))
	return r, nil
}

// printable keeps what a proxy said fit for an error message: one line of
// printable ASCII, bounded.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.TrimSpace(s)
}

func quoteShort(b []byte) string {
	if len(b) > 40 {
		b = b[:40]
	}
	return printable(string(b))
}

// describe is the reason part of an Error for r: the reason phrase, the
// proxy's own diagnostic, and for a 407 what it asks for.
func (r Response) describe() string {
	parts := []string{}
	if r.Reason != "" {
		parts = append(parts, r.Reason)
	}
	if r.ProxyError != "" {
		parts = append(parts, "("+r.ProxyError+")")
	}
	if r.Status == 407 {
		if len(r.Authenticate) == 0 {
			parts = append(parts, "(credentials missing or wrong)")
		} else {
			schemes := make([]string, 0, len(r.Authenticate))
			for _, a := range r.Authenticate {
				s, _, _ := strings.Cut(a, " ")
				schemes = append(schemes, s)
			}
			note := "(credentials missing or wrong; it accepts " + strings.Join(schemes, ", ") + ")"
			if !hasBasic(schemes) {
				note = "(it accepts only " + strings.Join(schemes, ", ") + "; icetcp offers Basic)"
			}
			parts = append(parts, note)
		}
	}
	return strings.Join(parts, " ")
}

func hasBasic(schemes []string) bool {
	for _, s := range schemes {
		if strings.EqualFold(s, "Basic") {
			return true
		}
	}
	return false
}
