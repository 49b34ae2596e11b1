package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	xproxy "golang.org/x/net/proxy"
)

// socksHandshaker is what x/net/proxy's SOCKS5 dialer offers beside
// DialContext: the handshake on a connection we opened, which keeps the
// connection ours (and its errors apart from the proxy's answer).
type socksHandshaker interface {
	DialWithConn(ctx context.Context, c net.Conn, network, address string) (net.Addr, error)
}

// socks5 opens a tunnel through a SOCKS5 proxy with golang.org/x/net/proxy
// (RFC 1928; RFC 1929 username/password when the URL has a user). The
// target's name, if any, goes to the proxy unresolved.
func (d *Dialer) socks5(ctx context.Context, target string) (_ net.Conn, err error) {
	var auth *xproxy.Auth
	if u := d.URL.User; u != nil {
		p, _ := u.Password()
		auth = &xproxy.Auth{User: u.Username(), Password: p}
	}
	sd, err := xproxy.SOCKS5("tcp", d.URL.Host, auth, nil)
	if err != nil {
		return nil, d.fail(target, err)
	}
	hs, ok := sd.(socksHandshaker)
	if !ok {
		return nil, d.fail(target, errors.New("golang.org/x/net/proxy's SOCKS5 dialer has no DialWithConn"))
	}
	c, err := d.forward(ctx)
	if err != nil {
		return nil, d.fail(target, fmt.Errorf("dial: %w", err))
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if _, err := hs.DialWithConn(ctx, c, "tcp", target); err != nil {
		if ctx.Err() != nil {
			return nil, d.fail(target, ctx.Err())
		}
		return nil, socksError(d.URL.Redacted(), target, err)
	}
	return newTunnel(c, nil, target), nil
}

// socksRefusals are the x/net/proxy messages of a proxy that declined:
// its authentication (RFC 1929 status, no acceptable method) or its rules
// (RFC 1928 reply 2). Other replies (unreachable, connection refused) are
// the target's fault, not the proxy's decision. x/net gives them as text
// only; TestDante pins them against a real dante.
var socksRefusals = []string{
	"authentication failed",
	"no acceptable authentication methods",
	"not allowed by ruleset",
}

// socksError turns x/net's error into an *Error: the SOCKS5 reply as
// Reason, or the broken exchange as Err.
func socksError(proxyURL, target string, err error) *Error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Proxy: proxyURL, Target: target, Err: err}
	}
	msg := strings.TrimPrefix(err.Error(), "unknown error ") // x/net's prefix for every reply code
	e := &Error{Proxy: proxyURL, Target: target, Reason: printable(msg)}
	for _, r := range socksRefusals {
		if strings.Contains(msg, r) {
			e.refused = true
		}
	}
	return e
}
