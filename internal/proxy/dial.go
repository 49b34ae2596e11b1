package proxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Dialer opens TCP tunnels through one proxy.
type Dialer struct {
	// URL is the proxy, as Parse returns it.
	URL *url.URL
	// Forward opens the TCP connection to the proxy itself; nil: a
	// net.Dialer. The agent passes its own network, so the connection to
	// the proxy leaves like every other socket it opens.
	Forward func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DialContext opens a tunnel to target (host:port; a name is resolved by
// the proxy) and returns it once the proxy said it is open. network must
// be "tcp" (or "tcp4"/"tcp6": the proxy picks the family). ctx bounds the
// connection to the proxy and its answer. A proxy's refusal or failure is
// an *Error.
func (d *Dialer) DialContext(ctx context.Context, network, target string) (net.Conn, error) {
	if !strings.HasPrefix(network, "tcp") {
		return nil, fmt.Errorf("proxy: network %q: only TCP goes through a proxy", network)
	}
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("proxy: target %q: %w", target, err)
	}
	switch d.URL.Scheme {
	case "http":
		return d.connect(ctx, target)
	case "socks5", "socks5h":
		return d.socks5(ctx, target)
	}
	return nil, fmt.Errorf("proxy: %s: %w", d.URL.Redacted(), errScheme)
}

func (d *Dialer) forward(ctx context.Context) (net.Conn, error) {
	if d.Forward != nil {
		c, err := d.Forward(ctx, "tcp", d.URL.Host)
		if err == nil && c == nil {
			err = errors.New("Forward returned neither a connection nor an error")
		}
		return c, err
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", d.URL.Host)
}

func (d *Dialer) fail(target string, err error) *Error {
	return &Error{Proxy: d.URL.Redacted(), Target: target, Err: err}
}

// connect asks an HTTP proxy for a tunnel with CONNECT and reads its
// answer; the tunnel is the same TCP connection from then on.
func (d *Dialer) connect(ctx context.Context, target string) (_ net.Conn, err error) {
	c, err := d.forward(ctx)
	if err != nil {
		return nil, d.fail(target, fmt.Errorf("dial: %w", err))
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	// ctx bounds the exchange: its deadline, and its end interrupts a
	// proxy that never answers.
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	resp, rest, err := d.exchange(c, target)
	if !stop() {
		return nil, d.fail(target, ctx.Err())
	}
	if err != nil {
		return nil, d.fail(target, err)
	}
	c.SetDeadline(time.Time{})
	if !resp.OK() {
		return nil, &Error{Proxy: d.URL.Redacted(), Target: target, Status: resp.Status, Reason: resp.describe(),
			refused: resp.Status >= 400 && resp.Status < 500}
	}
	// rest: the target spoke first and its bytes came with the answer.
	return newTunnel(c, rest, target), nil
}

// exchange writes the CONNECT request and reads the answer's head; rest is
// what arrived after it.
func (d *Dialer) exchange(c net.Conn, target string) (Response, []byte, error) {
	var req strings.Builder
	req.WriteString("CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n")
	if u := d.URL.User; u != nil {
		p, _ := u.Password()
		req.WriteString("Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+p)) + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := c.Write([]byte(req.String())); err != nil {
		return Response{}, nil, fmt.Errorf("send CONNECT: %w", err)
	}
	buf := make([]byte, 0, 1024)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxResponseHead {
				return Response{}, nil, fmt.Errorf("answer to CONNECT: no end of head within %d bytes", maxResponseHead)
			}
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if end := HeadEnd(buf); end >= 0 {
			resp, perr := ParseResponse(buf[:end])
			if perr != nil {
				return Response{}, nil, fmt.Errorf("answer to CONNECT: %w", perr)
			}
			return resp, buf[end:], nil
		}
		if err != nil {
			if len(buf) == 0 {
				return Response{}, nil, fmt.Errorf("no answer to CONNECT: %w", err)
			}
			return Response{}, nil, fmt.Errorf("answer to CONNECT cut short after %d bytes: %w", len(buf), err)
		}
	}
}

// tunnel is a connection through the proxy: RemoteAddr is the target,
// not the proxy (the TURN client takes the server's address and family
// from it), and bytes of the target that came with the proxy's answer are
// read first.
type tunnel struct {
	net.Conn
	prefix []byte
	remote net.Addr
}

func newTunnel(c net.Conn, prefix []byte, target string) *tunnel {
	t := &tunnel{Conn: c, prefix: prefix, remote: hostAddr(target)}
	if ap, err := netip.ParseAddrPort(target); err == nil {
		t.remote = net.TCPAddrFromAddrPort(ap)
	}
	return t
}

func (c *tunnel) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func (c *tunnel) RemoteAddr() net.Addr { return c.remote }

// CloseWrite half-closes the tunnel when the connection underneath can
// (the proxy then half-closes toward the target).
func (c *tunnel) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// hostAddr is a target named by a DNS name, which only the proxy resolved.
type hostAddr string

func (hostAddr) Network() string  { return "tcp" }
func (a hostAddr) String() string { return string(a) }
