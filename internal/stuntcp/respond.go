package stuntcp

import (
	"fmt"
	"net/netip"

	"github.com/pion/stun"
)

// software is the SOFTWARE attribute of every response (RFC 5389 §15.10).
var software = stun.NewSoftware("icetcp")

// respond builds in res the answer to req. answer is false for messages that
// get no answer (indications and responses, RFC 5389 §7.3.2/§7.3.3). A
// non-nil error means the message is invalid (bad FINGERPRINT) and the
// connection should be closed: over TCP there is no datagram to drop.
func respond(req, res *stun.Message, remote, local netip.AddrPort) (answer bool, err error) {
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
	if remote.IsValid() {
		setters = append(setters, &stun.XORMappedAddress{IP: remote.Addr().AsSlice(), Port: int(remote.Port())})
	}
	if local.IsValid() {
		setters = append(setters, &stun.ResponseOrigin{IP: local.Addr().AsSlice(), Port: int(local.Port())})
	}
	setters = append(setters, software, stun.Fingerprint)
	return true, res.Build(setters...)
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
