package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/internal/testnet"
)

// TestServeOpsFlagErrors: the operator's flags refuse what cannot work,
// naming the flag, before anything listens.
func TestServeOpsFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--announce-relay", "turn:198.51.100.2:3478?transport=tcp"}, "--announce-relay needs --turn-secret"},
		{[]string{"--turn-secret", "s", "--announce-relay", "stun:x"}, "--announce-relay"},
		{[]string{"--turn-secret", "s", "--announce-relay", "turn:a:1", "--no-announce"}, "exclude each other"},
		{[]string{"--relay-cred-ttl", "10s"}, "--relay-cred-ttl"},
		{[]string{"--cluster", "http://nats.example:4222"}, "--cluster"},
		{[]string{"--cluster-creds", "f"}, "--cluster-creds and --cluster-ca need --cluster"},
		{[]string{"--cluster", "nats://127.0.0.1:4222", "--cluster-replicas", "9"}, "--cluster-replicas"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--trusted-proxy", "10.0.0.0/33"}, "--trusted-proxy"},
		{[]string{"--drain", "-1s"}, "--drain"},
	} {
		var stdout, stderr strings.Builder
		code := run(append([]string{"serve", "--signal-addr", "127.0.0.1:0", "--stun-addr", ""}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
}

// TestServeProxyProtocolOnSTUN: behind a trusted TCP load balancer (here
// 127.0.0.1), the STUN answer names the client of the PROXY v2 header; a
// source that is not trusted cannot name anyone: its header is not read as
// one, and its Binding is answered with its own address.
func TestServeProxyProtocolOnSTUN(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startNode(t, ctx, "--trusted-proxy", "127.0.0.1/32", "--no-announce")
	client := netip.MustParseAddrPort("203.0.113.9:4242")
	hdr, err := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(client), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(n.stun))).Format()
	if err != nil {
		t.Fatal(err)
	}
	binding := func(src string, header []byte) (netip.AddrPort, netip.AddrPort, error) {
		c, err := testnet.DialFrom(ctx, src, n.stun)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if len(header) > 0 {
			if _, err := c.Write(header); err != nil {
				t.Fatal(err)
			}
		}
		bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
		defer bcancel()
		mapped, err := stuntcp.Binding(bctx, c)
		return mapped, netip.MustParseAddrPort(c.LocalAddr().String()), err
	}
	if mapped, _, err := binding("127.0.0.1", hdr); err != nil || mapped != client {
		t.Fatalf("through the trusted proxy: mapped %v, %v; want %v", mapped, err, client)
	}
	if mapped, local, err := binding("127.0.0.1", nil); err != nil || mapped != local {
		t.Fatalf("the trusted proxy's own Binding (no header): %v, %v; want %v", mapped, err, local)
	}
	if mapped, _, err := binding("127.0.0.2", hdr); err == nil {
		t.Fatalf("an untrusted source's header named %v", mapped)
	}
	if mapped, local, err := binding("127.0.0.2", nil); err != nil || mapped != local {
		t.Fatalf("untrusted source's Binding: %v, %v; want %v", mapped, err, local)
	}
}
