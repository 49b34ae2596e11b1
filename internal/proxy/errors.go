package proxy

import (
	"strconv"
	"strings"
)

// Error is a tunnel the proxy did not open.
type Error struct {
	// Proxy is the proxy's URL without its password (url.URL.Redacted).
	Proxy string
	// Target is the host:port the tunnel was asked for.
	Target string
	// Status is the HTTP status of the proxy's answer to CONNECT (407,
	// 403, 503, ...); 0 for SOCKS5 and when there was no answer.
	Status int
	// Reason is what the proxy said: the HTTP reason phrase with the
	// diagnostics it added (squid's X-Squid-Error, the authentication
	// schemes of a 407), or the SOCKS5 reply.
	Reason string
	// Err is the cause when the proxy could not be reached or answered
	// something that is not its protocol.
	Err error

	refused bool
}

// Refused reports that the proxy answered and declined: credentials
// missing or wrong, or its policy forbids the target (a port it does not
// tunnel to). Trying again does not help; the configuration must change.
// A proxy that could not reach the target (502, 503, 504, a SOCKS5
// "connection refused") did not refuse: the target may be down.
func (e *Error) Refused() bool { return e.refused }

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("proxy ")
	b.WriteString(e.Proxy)
	if e.refused {
		b.WriteString(" refused ")
	} else {
		b.WriteString(": ")
	}
	if strings.HasPrefix(e.Proxy, "socks") {
		b.WriteString("tunnel to ")
	} else {
		b.WriteString("CONNECT ")
	}
	b.WriteString(e.Target)
	if e.Status != 0 {
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Reason != "" {
		if e.Status != 0 {
			b.WriteString(" ")
		} else {
			b.WriteString(": ")
		}
		b.WriteString(e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}
