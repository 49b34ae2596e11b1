package relay

import (
	"errors"
	"net/netip"
	"testing"
)

// fakeHost is a relay at 203.0.113.5 (RelayIP, listening on 3478) with
// allocations on ports 50000 and 50001.
type fakeHost struct{}

var (
	fakeOwn   = netip.MustParseAddr("203.0.113.5")
	fakeLocal = netip.MustParseAddr("10.0.0.5") // the NATed interface behind RelayIP
)

func (fakeHost) isOwnIP(ip netip.Addr) bool { return ip == fakeOwn || ip == fakeLocal }
func (h fakeHost) isRelayAddr(ap netip.AddrPort) bool {
	return h.isOwnIP(ap.Addr()) && (ap.Port() == 50000 || ap.Port() == 50001)
}
func (h fakeHost) isListenAddr(ap netip.AddrPort) bool {
	return h.isOwnIP(ap.Addr()) && ap.Port() == 3478
}

func TestClassify(t *testing.T) {
	tests := []struct {
		ip   string
		want addrClass
	}{
		{"198.51.100.7", classPublic},
		{"2001:db8::1", classPublic},
		{"8.8.8.8", classPublic},
		{"127.0.0.1", classLoopback},
		{"127.255.0.9", classLoopback},
		{"::1", classLoopback},
		{"::ffff:127.0.0.1", classLoopback},
		{"10.1.2.3", classPrivate},
		{"172.16.0.1", classPrivate},
		{"172.31.255.255", classPrivate},
		{"172.32.0.1", classPublic},
		{"192.168.1.1", classPrivate},
		{"100.64.0.1", classPrivate},
		{"100.127.255.254", classPrivate},
		{"100.128.0.1", classPublic},
		{"169.254.169.254", classPrivate}, // cloud metadata services live here
		{"fd00::1", classPrivate},
		{"fe80::1", classPrivate},
		{"::ffff:10.0.0.1", classPrivate},
		{"64:ff9b::a00:1", classPrivate},   // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", classLoopback}, // NAT64 of 127.0.0.1
		{"64:ff9b::c633:6407", classPublic},
		{"0.0.0.0", classSpecial},
		{"0.1.2.3", classSpecial},
		{"::", classSpecial},
		{"224.0.0.1", classSpecial},
		{"239.255.255.250", classSpecial},
		{"255.255.255.255", classSpecial},
		{"240.0.0.1", classSpecial},
		{"ff02::1", classSpecial},
	}
	for _, tt := range tests {
		if got := classify(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("classify(%s) = %s, want %s", tt.ip, got, tt.want)
		}
	}
	if got := classify(netip.Addr{}); got != classSpecial {
		t.Errorf("classify(zero) = %s", got)
	}
}

func TestPeerPolicy(t *testing.T) {
	var h fakeHost
	tests := []struct {
		peer                      string
		loopback, private, wantOK bool
	}{
		{"198.51.100.7:443", false, false, true},
		{"[2001:db8::1]:443", false, false, true},
		{"127.0.0.1:8080", false, false, false},
		{"127.0.0.1:8080", true, false, true},
		{"10.9.9.9:22", false, false, false},
		{"10.9.9.9:22", false, true, true},
		{"10.9.9.9:22", true, false, false},
		{"169.254.169.254:80", false, true, true},
		{"169.254.169.254:80", false, false, false},
		{"0.0.0.0:80", true, true, false},
		{"224.0.0.1:80", true, true, false},
		{"198.51.100.7:0", true, true, false},
		// The relay itself: its allocations yes, its own ports and other
		// services of its host no.
		{"203.0.113.5:50000", false, false, true},
		{"10.0.0.5:50001", false, false, true},
		{"203.0.113.5:3478", true, true, false},
		{"10.0.0.5:3478", true, true, false},
		{"203.0.113.5:22", false, false, false},
		{"203.0.113.5:22", true, true, false},
		{"10.0.0.5:22", false, false, false},
		{"10.0.0.5:22", false, true, true}, // a private own address: the operator allowed private peers
		{"[::ffff:203.0.113.5]:50000", false, false, true},
	}
	for _, tt := range tests {
		p := peerPolicy{allowLoopback: tt.loopback, allowPrivate: tt.private}
		err := p.checkAddr(netip.MustParseAddrPort(tt.peer), h)
		if (err == nil) != tt.wantOK || (err != nil && !errors.Is(err, ErrPeerForbidden)) {
			t.Errorf("loopback=%v private=%v checkAddr(%s) = %v, want ok=%v", tt.loopback, tt.private, tt.peer, err, tt.wantOK)
		}
	}
}

func TestPeerPolicyIP(t *testing.T) {
	var h fakeHost
	tests := []struct {
		ip                        string
		loopback, private, wantOK bool
	}{
		{"198.51.100.7", false, false, true},
		{"127.0.0.2", false, false, false},
		{"127.0.0.2", true, false, true},
		{"192.168.0.1", false, false, false},
		{"192.168.0.1", false, true, true},
		{"203.0.113.5", false, false, true}, // own: the port decides later
		{"10.0.0.5", false, false, true},
		{"255.255.255.255", true, true, false},
	}
	for _, tt := range tests {
		p := peerPolicy{allowLoopback: tt.loopback, allowPrivate: tt.private}
		err := p.checkIP(netip.MustParseAddr(tt.ip), h)
		if (err == nil) != tt.wantOK {
			t.Errorf("loopback=%v private=%v checkIP(%s) = %v, want ok=%v", tt.loopback, tt.private, tt.ip, err, tt.wantOK)
		}
	}
}
