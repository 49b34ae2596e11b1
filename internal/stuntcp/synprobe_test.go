package stuntcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun"
)

func TestSYNProbeCodec(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want SYNProbe
		err  bool
	}{
		{"request", []byte{0, 0, 0, 0}, SYNProbe{Outcome: ProbeRequested}, false},
		{"refused", []byte{1, 0, 0, 7}, SYNProbe{Outcome: ProbeRefused, Elapsed: 7 * time.Millisecond}, false},
		{"timed out", []byte{2, 0, 0x03, 0xE8}, SYNProbe{Outcome: ProbeTimedOut, Elapsed: time.Second}, false},
		{"connected", []byte{3, 0, 0, 1}, SYNProbe{Outcome: ProbeConnected, Elapsed: time.Millisecond}, false},
		{"unreachable", []byte{4, 0, 0xFF, 0xFF}, SYNProbe{Outcome: ProbeUnreachable, Elapsed: 65535 * time.Millisecond}, false},
		{"declined busy", []byte{5, 3, 0, 0}, SYNProbe{Outcome: ProbeDeclined, Decline: DeclineBusy}, false},
		{"empty", nil, SYNProbe{}, true},
		{"short", []byte{1, 0, 0}, SYNProbe{}, true},
		{"long", []byte{1, 0, 0, 0, 0}, SYNProbe{}, true},
		{"unknown outcome", []byte{6, 0, 0, 0}, SYNProbe{}, true},
		{"unknown decline", []byte{5, 5, 0, 0}, SYNProbe{}, true},
		{"declined without reason", []byte{5, 0, 0, 0}, SYNProbe{}, true},
		{"reason without decline", []byte{1, 2, 0, 0}, SYNProbe{}, true},
		{"request with elapsed", []byte{0, 0, 0, 1}, SYNProbe{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSYNProbe(tt.in)
			if tt.err {
				if !errors.Is(err, ErrBadSYNProbe) {
					t.Fatalf("err = %v, want ErrBadSYNProbe", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			m := stun.MustBuild(stun.TransactionID, stun.BindingSuccess, got)
			v, err := m.Get(AttrSYNProbe)
			if err != nil || !bytes.Equal(v, tt.in) {
				t.Fatalf("re-encoded %x (%v), want %x", v, err, tt.in)
			}
		})
	}
	// Elapsed saturates at 65535 ms; sub-millisecond parts are dropped.
	m := stun.MustBuild(stun.TransactionID, stun.BindingSuccess, SYNProbe{Outcome: ProbeTimedOut, Elapsed: time.Hour + time.Microsecond})
	var p SYNProbe
	if err := p.GetFrom(m); err != nil || p.Elapsed != 65535*time.Millisecond {
		t.Fatalf("saturated elapsed %v (%v)", p.Elapsed, err)
	}
	if err := (SYNProbe{Outcome: ProbeDeclined}).AddTo(m); !errors.Is(err, ErrBadSYNProbe) {
		t.Fatalf("AddTo of an invalid value: %v", err)
	}
	if err := p.GetFrom(stun.MustBuild(stun.TransactionID, stun.BindingSuccess)); !errors.Is(err, stun.ErrAttributeNotFound) {
		t.Fatalf("GetFrom without the attribute: %v", err)
	}
}

func TestAttrSYNProbeIsComprehensionOptional(t *testing.T) {
	if AttrSYNProbe.Required() || AttrSYNProbe < 0xC000 {
		t.Fatalf("%#x must be comprehension-optional, expert-review range", uint16(AttrSYNProbe))
	}
}

// FuzzDecodeSYNProbe: the decoder never panics, and what it accepts
// re-encodes to the same bytes.
func FuzzDecodeSYNProbe(f *testing.F) {
	for _, seed := range [][]byte{{0, 0, 0, 0}, {1, 0, 0, 9}, {5, 2, 0, 0}, {9, 9, 9, 9}, {}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := DecodeSYNProbe(in)
		if err != nil {
			return
		}
		m := stun.MustBuild(stun.TransactionID, stun.BindingSuccess, p)
		v, err := m.Get(AttrSYNProbe)
		if err != nil || !bytes.Equal(v, in) {
			t.Fatalf("%x decoded to %+v, re-encoded %x (%v)", in, p, v, err)
		}
	})
}

// FuzzDecodeResponse: any message that decodes as STUN goes through the
// client's response decoder without a panic, and a success needs a mapped
// address.
func FuzzDecodeResponse(f *testing.F) {
	f.Add(stun.MustBuild(stun.TransactionID, stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 1), Port: 5},
		&stun.OtherAddress{IP: net.IPv4(192, 0, 2, 2), Port: 6},
		SYNProbe{Outcome: ProbeRefused, Elapsed: 3 * time.Millisecond}, stun.Fingerprint).Raw)
	f.Add(stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodBinding, stun.ClassErrorResponse), stun.CodeBadRequest).Raw)
	f.Fuzz(func(t *testing.T, in []byte) {
		var m stun.Message
		if ReadMessage(bytes.NewReader(in), &m) != nil {
			return
		}
		r, err := decodeResponse(&m)
		if err == nil && !r.Mapped.IsValid() {
			t.Fatalf("success without a mapped address: %+v", r)
		}
	})
}

func TestProbeOutcome(t *testing.T) {
	op := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", err)}
	}
	for _, tc := range []struct {
		err  error
		want ProbeOutcome
	}{
		{nil, ProbeConnected},
		{op(syscall.ECONNREFUSED), ProbeRefused},
		{op(syscall.ECONNRESET), ProbeConnected}, // reset after the SYN-ACK
		{op(syscall.ETIMEDOUT), ProbeTimedOut},
		{&net.OpError{Op: "dial", Err: context.DeadlineExceeded}, ProbeTimedOut},
		{fmt.Errorf("x: %w", os.ErrDeadlineExceeded), ProbeTimedOut},
		{op(syscall.EHOSTUNREACH), ProbeUnreachable},
		{op(syscall.EADDRNOTAVAIL), ProbeUnreachable},
	} {
		if got := probeOutcome(tc.err); got != tc.want {
			t.Errorf("probeOutcome(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
