package stuntcp

import (
	"fmt"
	"net/netip"

	"github.com/pion/stun"
)

// software is the SOFTWARE attribute of every response (RFC 5389 §15.10).
var software = stun.NewSoftware("icetcp")

// reply is what the server knows about a request besides its bytes.
type reply struct {
	remote, local netip.AddrPort // the connection's addresses
	other         netip.AddrPort // OTHER-ADDRESS; zero: RFC 5780 off
	probe         *SYNProbe      // the SYN probe's report, when one was asked for
}

// respond builds in res the answer to req. answer is false for messages that
// get no answer (indications and responses, RFC 5389 §7.3.2/§7.3.3). A
// non-nil error means the message is invalid (bad FINGERPRINT) and the
// connection should be closed: over TCP there is no datagram to drop.
func respond(req, res *stun.Message, r reply) (answer bool, err error) {
	if req.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(req); err != nil {
			return false, fmt.Errorf("stuntcp: request FINGERPRINT: %w", err)
		}
	}
	if req.Type.Class != stun.ClassRequest {
		return false, nil
	}
	res.Reset()
	tid := stun.NewTransactionIDSetter(req.TransactionID)
	errType := stun.NewType(req.Type.Method, stun.ClassErrorResponse)
	if req.Type.Method != stun.MethodBinding {
		return true, res.Build(tid, errType, stun.CodeBadRequest, software, stun.Fingerprint)
	}
	if unknown := unknownRequired(req); len(unknown) > 0 {
		return true, res.Build(tid, errType, stun.CodeUnknownAttribute, unknown, software, stun.Fingerprint)
	}
	setters := []stun.Setter{tid, stun.BindingSuccess}
	if r.remote.IsValid() {
		setters = append(setters, &stun.XORMappedAddress{IP: r.remote.Addr().AsSlice(), Port: int(r.remote.Port())})
	}
	if r.local.IsValid() {
		setters = append(setters, &stun.ResponseOrigin{IP: r.local.Addr().AsSlice(), Port: int(r.local.Port())})
	}
	if r.other.IsValid() {
		setters = append(setters, &stun.OtherAddress{IP: r.other.Addr().AsSlice(), Port: int(r.other.Port())})
	}
	if r.probe != nil {
		setters = append(setters, *r.probe)
	}
	setters = append(setters, software, stun.Fingerprint)
	return true, res.Build(setters...)
}

// wantsProbe reports whether req is a Binding request that respond will
// answer with success and that asks for a SYN probe (a SYN-PROBE attribute
// whose value is a well-formed request; other values are ignored, as an
// unknown comprehension-optional attribute would be).
func wantsProbe(req *stun.Message) bool {
	if req.Type != stun.BindingRequest || !req.Contains(AttrSYNProbe) || len(unknownRequired(req)) > 0 {
		return false
	}
	if req.Contains(stun.AttrFingerprint) && stun.Fingerprint.Check(req) != nil {
		return false
	}
	var p SYNProbe
	return p.GetFrom(req) == nil && p.Outcome == ProbeRequested
}

// unknownRequired lists the comprehension-required attributes (type below
// 0x8000, RFC 5389 §15) of a Binding request: this server implements none of
// them (not CHANGE-REQUEST nor RESPONSE-PORT of RFC 5780, nor
// authentication), so each one earns a 420 (RFC 5389 §7.3.1).
func unknownRequired(m *stun.Message) stun.UnknownAttributes {
	var unknown stun.UnknownAttributes
	for _, a := range m.Attributes {
		if a.Type.Required() {
			unknown = append(unknown, a.Type)
		}
	}
	return unknown
}
