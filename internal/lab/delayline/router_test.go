package delayline

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"testing/synctest"
)

// tcpSYN builds an IPv4 TCP SYN with a valid header checksum.
func tcpSYN(src, dst string, ttl byte, seq uint32) []byte {
	b := make([]byte, 40)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[offTotalLen:], 40)
	binary.BigEndian.PutUint16(b[offID:], 0x1234)
	b[offTTL], b[offProto] = ttl, 6
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[offSrc:], s[:])
	copy(b[offDst:], d[:])
	binary.BigEndian.PutUint16(b[offChecksum:], checksum(b[:20]))
	binary.BigEndian.PutUint16(b[20:], 40000)  // source port
	binary.BigEndian.PutUint16(b[22:], 3478)   // destination port
	binary.BigEndian.PutUint32(b[24:], seq)    // sequence number
	b[33] = 0x02                               // SYN
	binary.BigEndian.PutUint16(b[34:], 0xffff) // window
	return b
}

var routerAddr = netip.MustParseAddr("203.0.113.254")

func TestRouterHop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(Config{Router: routerAddr})
		a, b := newMemLink(16), newMemLink(16)
		must(t, l.AddLink("a", a, pfx("203.0.113.1/32"), LinkConfig{}))
		must(t, l.AddLink("b", b, pfx("198.51.100.0/24"), LinkConfig{}))
		l.Start()
		defer l.Close()

		// TTL 2 crosses the hop and arrives with TTL 1 and a valid checksum.
		a.fromHost <- tcpSYN("203.0.113.1", "198.51.100.10", 2, 7)
		synctest.Wait()
		got := <-b.toHost
		if got[offTTL] != 1 || checksum(got[:20]) != 0 {
			t.Fatalf("forwarded TTL %d, header checksum ok=%v", got[offTTL], checksum(got[:20]) == 0)
		}

		// TTL 1 (and 0) expire: ICMP Time Exceeded from the router back to
		// the sender, quoting the packet as it arrived.
		for _, ttl := range []byte{1, 0} {
			syn := tcpSYN("203.0.113.1", "198.51.100.10", ttl, 99)
			a.fromHost <- syn
			synctest.Wait()
			select {
			case p := <-b.toHost:
				t.Fatalf("TTL %d forwarded: % x", ttl, p)
			default:
			}
			icmp := <-a.toHost
			if len(icmp) != 20+8+len(syn) || checksum(icmp[:20]) != 0 || checksum(icmp[20:]) != 0 {
				t.Fatalf("ICMP %d bytes, checksums ip %v icmp %v", len(icmp), checksum(icmp[:20]) == 0, checksum(icmp[20:]) == 0)
			}
			if icmp[offProto] != 1 || icmp[20] != 11 || icmp[21] != 0 {
				t.Fatalf("proto %d type %d code %d, want ICMP 11/0", icmp[offProto], icmp[20], icmp[21])
			}
			if src, dst := netip.AddrFrom4([4]byte(icmp[offSrc:])), netip.AddrFrom4([4]byte(icmp[offDst:])); src != routerAddr || dst != netip.MustParseAddr("203.0.113.1") {
				t.Fatalf("ICMP %v -> %v", src, dst)
			}
			if !bytes.Equal(icmp[28:], syn) {
				t.Fatalf("quote % x, want % x", icmp[28:], syn)
			}
		}
		if s := l.Stats(); s.Expired != 2 || s.TimeExceeded != 2 {
			t.Errorf("Expired %d TimeExceeded %d, want 2 2", s.Expired, s.TimeExceeded)
		}
	})
}

// TestRouterNoAnswer: RFC 1812 §4.3.2.7 cases get no ICMP error, and a long
// packet is quoted only up to 576 bytes in all.
func TestRouterNoAnswer(t *testing.T) {
	icmpErr := tcpSYN("203.0.113.1", "198.51.100.10", 1, 1)
	icmpErr[offProto], icmpErr[20] = 1, 11 // an ICMP Time Exceeded itself
	frag := tcpSYN("203.0.113.1", "198.51.100.10", 1, 1)
	binary.BigEndian.PutUint16(frag[offFragment:], 5) // not the first fragment
	mcast := tcpSYN("224.0.0.5", "198.51.100.10", 1, 1)
	for name, p := range map[string][]byte{"icmp error": icmpErr, "fragment": frag, "multicast source": mcast} {
		if fwd, reply := hop(p, 20, routerAddr, 1); fwd || reply != nil {
			t.Errorf("%s: forward %v reply %d bytes, want dropped silently", name, fwd, len(reply))
		}
	}
	echo := tcpSYN("203.0.113.1", "198.51.100.10", 1, 1)
	echo[offProto], echo[20] = 1, 8 // an echo request is answered
	if _, reply := hop(echo, 20, routerAddr, 1); reply == nil {
		t.Error("echo request with TTL 1 not answered")
	}
	long := append(tcpSYN("203.0.113.1", "198.51.100.10", 1, 1), make([]byte, 1400)...)
	if _, reply := hop(long, 20, routerAddr, 1); len(reply) != icmpMaxLen {
		t.Errorf("reply to a long packet is %d bytes, want %d", len(reply), icmpMaxLen)
	}
}

func TestNoRouterKeepsTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, a, b := twoLinks(t, Config{}, LinkConfig{}, LinkConfig{})
		syn := tcpSYN("203.0.113.1", "198.51.100.10", 1, 1)
		a.fromHost <- syn
		if got := <-b.toHost; !bytes.Equal(got, syn) {
			t.Fatalf("a plain segment changed the packet: % x", got)
		}
	})
}

func TestRouterMustBeIPv4(t *testing.T) {
	l := New(Config{Router: netip.MustParseAddr("2001:db8::1")})
	defer l.Close()
	if err := l.AddLink("a", newMemLink(1), nil, LinkConfig{}); err == nil {
		t.Fatal("IPv6 router address accepted")
	}
}

// FuzzHop: any bytes through the router hop either forward with a valid
// header checksum or drop, answered at most by a well-formed ICMP error.
func FuzzHop(f *testing.F) {
	f.Add(tcpSYN("203.0.113.1", "198.51.100.10", 1, 1))
	f.Add(tcpSYN("203.0.113.1", "198.51.100.10", 64, 1))
	f.Add([]byte{0x4f, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ihl := headerLen(b)
		if ihl == 0 {
			return
		}
		in := bytes.Clone(b)
		fwd, reply := hop(b, ihl, routerAddr, 1)
		if fwd && (b[offTTL] != in[offTTL]-1 || checksum(b[:ihl]) != 0) {
			t.Fatalf("forwarded with TTL %d (was %d), checksum %#x", b[offTTL], in[offTTL], checksum(b[:ihl]))
		}
		if reply != nil && (fwd || len(reply) > icmpMaxLen || checksum(reply[:20]) != 0 || checksum(reply[20:]) != 0) {
			t.Fatalf("bad reply % x", reply)
		}
	})
}
