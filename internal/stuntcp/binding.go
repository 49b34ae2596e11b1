package stuntcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun"
)

// aLongTimeAgo is a deadline in the past, to interrupt pending I/O.
var aLongTimeAgo = time.Unix(1, 0)

// Binding sends a Binding request over conn and returns the server-reflexive
// address from the response's XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS as a
// fallback (RFC 5389 §7.3.3 / §15.1). ctx bounds the transaction through
// conn's deadline, which is cleared again afterwards: the conn stays open so
// the NAT mapping it holds survives (RFC 6544 §5.2). Responses with another
// transaction ID (answers to an earlier, abandoned request) are skipped.
//
// After an error the stream may hold part of a message; the caller should
// close conn rather than run another transaction on it.
func Binding(ctx context.Context, conn net.Conn) (netip.AddrPort, error) {
	r, err := Query(ctx, conn, Request{})
	return r.Mapped, err
}

// Request is what a Binding request asks for beyond the mapped address.
type Request struct {
	// SYNProbe adds the SYN-PROBE attribute: the server (an icetcp server
	// with an alternate address) tries a TCP connection back to this
	// connection's source address and reports the outcome. The response
	// then comes after the probe, up to the server's probe timeout (1 s by
	// default) later.
	SYNProbe bool
}

// Response is what a Binding success response told.
type Response struct {
	Mapped   netip.AddrPort // XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS)
	Origin   netip.AddrPort // RESPONSE-ORIGIN (RFC 5780 §7.3); zero if absent
	Other    netip.AddrPort // OTHER-ADDRESS (RFC 5780 §7.4); zero if absent
	Software string         // SOFTWARE; empty if absent
	// Probe is the SYN-PROBE report, nil when the response has none (the
	// server does not implement it, or it was not asked for).
	Probe *SYNProbe
}

// Query is Binding with the whole response: it sends a Binding request
// (with what req asks for) and decodes the success response. Its contract
// on ctx, deadlines and stale responses is Binding's.
func Query(ctx context.Context, conn net.Conn, req Request) (Response, error) {
	server := conn.RemoteAddr()
	fail := func(err error) (Response, error) {
		if cerr := context.Cause(ctx); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return Response{}, fmt.Errorf("stuntcp: binding via %s: %w", server, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	dl, _ := ctx.Deadline() // zero when ctx has none
	if err := conn.SetDeadline(dl); err != nil {
		return fail(err)
	}
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		conn.SetDeadline(aLongTimeAgo)
		close(interrupted)
	})
	defer func() {
		if !stop() {
			// The AfterFunc ran or is running: let it finish so that its
			// past deadline does not land after the reset below.
			<-interrupted
		}
		conn.SetDeadline(time.Time{})
	}()

	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest}
	if req.SYNProbe {
		setters = append(setters, SYNProbe{Outcome: ProbeRequested})
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return fail(err)
	}
	if _, err := conn.Write(m.Raw); err != nil {
		return fail(err)
	}
	var res stun.Message
	for {
		if err := ReadMessage(conn, &res); err != nil {
			return fail(err)
		}
		if res.TransactionID == m.TransactionID {
			break
		}
	}
	r, err := decodeResponse(&res)
	if err != nil {
		return fail(err)
	}
	return r, nil
}

// decodeResponse checks a Binding response and extracts what it says.
// Optional attributes that do not decode are left out, except a malformed
// SYN-PROBE, which is an error: the client asked for it.
func decodeResponse(m *stun.Message) (Response, error) {
	mapped, err := mappedAddress(m)
	if err != nil {
		return Response{}, err
	}
	r := Response{Mapped: mapped}
	var origin stun.ResponseOrigin
	if origin.GetFrom(m) == nil {
		r.Origin, _ = toAddrPort(origin.IP, origin.Port)
	}
	var other stun.OtherAddress
	if other.GetFrom(m) == nil {
		r.Other, _ = toAddrPort(other.IP, other.Port)
	}
	var sw stun.Software
	if sw.GetFrom(m) == nil {
		r.Software = sw.String()
	}
	var p SYNProbe
	switch err := p.GetFrom(m); {
	case err == nil:
		r.Probe = &p
	case !errors.Is(err, stun.ErrAttributeNotFound):
		return Response{}, err
	}
	return r, nil
}

// mappedAddress checks a Binding response and extracts the mapped address.
func mappedAddress(m *stun.Message) (netip.AddrPort, error) {
	if m.Type.Method != stun.MethodBinding {
		return netip.AddrPort{}, fmt.Errorf("response has method %s, want Binding", m.Type.Method)
	}
	if m.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(m); err != nil {
			return netip.AddrPort{}, fmt.Errorf("response FINGERPRINT: %w", err)
		}
	}
	switch m.Type.Class {
	case stun.ClassSuccessResponse:
	case stun.ClassErrorResponse:
		var code stun.ErrorCodeAttribute
		if err := code.GetFrom(m); err != nil {
			return netip.AddrPort{}, fmt.Errorf("error response without ERROR-CODE: %w", err)
		}
		return netip.AddrPort{}, fmt.Errorf("error response %d %s", code.Code, code.Reason)
	default:
		return netip.AddrPort{}, fmt.Errorf("unexpected %s", m.Type)
	}
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err == nil {
		return toAddrPort(xor.IP, xor.Port)
	}
	var mapped stun.MappedAddress
	if err := mapped.GetFrom(m); err != nil {
		return netip.AddrPort{}, fmt.Errorf("response has neither XOR-MAPPED-ADDRESS nor MAPPED-ADDRESS: %w", err)
	}
	return toAddrPort(mapped.IP, mapped.Port)
}

func toAddrPort(ip net.IP, port int) (netip.AddrPort, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port < 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("bad mapped address %v port %d", ip, port)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
}
