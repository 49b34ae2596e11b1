package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	xproxy "golang.org/x/net/proxy"
)

// socks5 opens a tunnel through a SOCKS5 proxy with golang.org/x/net/proxy
// (RFC 1928; RFC 1929 username/password when the URL has a user). The
// target's name, if any, goes to the proxy unresolved.
func (d *Dialer) socks5(ctx context.Context, target string) (net.Conn, error) {
	var auth *xproxy.Auth
	if u := d.URL.User; u != nil {
		p, _ := u.Password()
		auth = &xproxy.Auth{User: u.Username(), Password: p}
	}
	sd, err := xproxy.SOCKS5("tcp", d.URL.Host, auth, forwarder{d})
	if err != nil {
		return nil, d.fail(target, err)
	}
	c, err := sd.(xproxy.ContextDialer).DialContext(ctx, "tcp", target)
	if err == nil {
		return c, nil
	}
	var fe forwardError
	if errors.As(err, &fe) {
		return nil, d.fail(target, fmt.Errorf("dial: %w", fe.err))
	}
	if ctx.Err() != nil {
		return nil, d.fail(target, ctx.Err())
	}
	return nil, socksError(d.URL.Redacted(), target, err)
}

// socksRefusals are the x/net/proxy messages of a proxy that declined:
// its authentication (RFC 1929 status, no acceptable method) or its rules
// (RFC 1928 reply 2). Other replies (unreachable, connection refused) are
// the target's fault, not the proxy's decision. x/net gives them as text
// only; TestSOCKS5Refusals pins them against dante.
var socksRefusals = []string{
	"authentication failed",
	"no acceptable authentication methods",
	"not allowed by ruleset",
}

// socksError turns x/net's error into an *Error: the reply as Reason.
func socksError(proxyURL, target string, err error) *Error {
	msg := err.Error()
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		msg = oe.Err.Error()
	}
	msg = strings.TrimPrefix(msg, "unknown error ") // x/net's prefix for every reply code
	e := &Error{Proxy: proxyURL, Target: target, Reason: printable(msg)}
	for _, r := range socksRefusals {
		if strings.Contains(msg, r) {
			e.refused = true
		}
	}
	if !e.refused && (errors.Is(err, net.ErrClosed) || isNetError(err)) {
		e.Reason, e.Err = "", err
	}
	return e
}

// isNetError: the exchange broke (reset, EOF, timeout) rather than the
// proxy replying.
func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return errors.As(err, &ne) || strings.Contains(err.Error(), "EOF")
}

// forwarder adapts Dialer.Forward to x/net's Dialer interfaces and marks
// its errors, which are the proxy's unreachability, not its answer.
type forwarder struct{ d *Dialer }

func (f forwarder) Dial(network, addr string) (net.Conn, error) {
	return f.DialContext(context.Background(), network, addr)
}

func (f forwarder) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := f.d.forward(ctx)
	if err != nil {
		return nil, forwardError{err}
	}
	return c, nil
}

type forwardError struct{ err error }

func (e forwardError) Error() string { return e.err.Error() }
func (e forwardError) Unwrap() error { return e.err }
