package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pion/stun"
)

// checkParams are the fields of one outgoing Binding request (RFC 8445 §7.2.2).
type checkParams struct {
	localUfrag, remoteUfrag, remotePwd string
	priority                           uint32 // PRIORITY: the prflx priority of the local candidate
	controlling                        bool
	tiebreaker                         uint64
	useCandidate                       bool
	// move marks a nomination of the session's next path (UPGRADE):
	// the peer moves its session to it rather than take it for a first
	// selection it did not make.
	move bool
}

// buildRequest encodes a Binding request signed with the remote password.
func buildRequest(p checkParams, txID [stun.TransactionIDSize]byte) (*stun.Message, error) {
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(txID),
		stun.BindingRequest,
		stun.NewUsername(p.remoteUfrag + ":" + p.localUfrag),
		priorityAttr(p.priority),
		roleAttr{controlling: p.controlling, tiebreaker: p.tiebreaker},
	}
	if p.useCandidate {
		setters = append(setters, useCandidateAttr{})
	}
	if p.move {
		setters = append(setters, rawAttr{attrMove, nil})
	}
	setters = append(setters, stun.NewShortTermIntegrity(p.remotePwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return nil, fmt.Errorf("agent: build binding request: %w", err)
	}
	return m, nil
}

// buildSuccess answers req with the address the request came from, signed
// with the local password (RFC 8445 §7.3.1).
func buildSuccess(req *stun.Message, from netip.AddrPort, localPwd string) (*stun.Message, error) {
	m, err := stun.Build(
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.BindingSuccess,
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
		stun.NewShortTermIntegrity(localPwd),
		stun.Fingerprint,
	)
	if err != nil {
		return nil, fmt.Errorf("agent: build binding success: %w", err)
	}
	return m, nil
}

// buildError answers req with an error code. 487 is signed (RFC 8445
// §7.3.1.1); 400/401 are not, since the request could not be authenticated.
func buildError(req *stun.Message, code stun.ErrorCode, localPwd string) (*stun.Message, error) {
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(req.TransactionID),
		stun.NewType(stun.MethodBinding, stun.ClassErrorResponse),
		code,
	}
	if localPwd != "" {
		setters = append(setters, stun.NewShortTermIntegrity(localPwd))
	}
	setters = append(setters, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return nil, fmt.Errorf("agent: build binding error %d: %w", code, err)
	}
	return m, nil
}

var (
	errNotBinding    = errors.New("agent: not a Binding message")
	errNoFingerprint = errors.New("agent: STUN message without valid FINGERPRINT")
	errBadUsername   = errors.New("agent: USERNAME does not name this agent")
)

// decodeSTUN parses a framed STUN message and checks its FINGERPRINT, which
// ICE requires on every check (RFC 8445 §7.2.2); a frame without it is not
// an ICE message.
func decodeSTUN(frame []byte) (*stun.Message, error) {
	m := &stun.Message{Raw: append([]byte(nil), frame...)}
	if err := m.Decode(); err != nil {
		return nil, fmt.Errorf("agent: decode STUN: %w", err)
	}
	if m.Type.Method != stun.MethodBinding {
		return nil, fmt.Errorf("%w: method %v", errNotBinding, m.Type.Method)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		return nil, fmt.Errorf("%w: %w", errNoFingerprint, err)
	}
	return m, nil
}

// requestUfrags splits USERNAME "local:remote" of an incoming request (the
// receiver's ufrag comes first).
func requestUfrags(m *stun.Message) (local, remote string, err error) {
	var u stun.Username
	if err := u.GetFrom(m); err != nil {
		return "", "", fmt.Errorf("agent: request USERNAME: %w", err)
	}
	local, remote, ok := strings.Cut(u.String(), ":")
	if !ok || local == "" || remote == "" {
		return "", "", fmt.Errorf("%w: %q", errBadUsername, u.String())
	}
	return local, remote, nil
}

// authRequest checks an incoming request against our credentials.
func authRequest(m *stun.Message, localUfrag, localPwd string) error {
	local, _, err := requestUfrags(m)
	if err != nil {
		return err
	}
	if local != localUfrag {
		return fmt.Errorf("%w: %q is not %q", errBadUsername, local, localUfrag)
	}
	if err := stun.NewShortTermIntegrity(localPwd).Check(m); err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return nil
}

// requestRole reads ICE-CONTROLLING / ICE-CONTROLLED.
func requestRole(m *stun.Message) (controlling bool, tiebreaker uint64, err error) {
	r, err := getRole(m)
	if err != nil {
		return false, 0, fmt.Errorf("agent: request without ICE-CONTROLLING/ICE-CONTROLLED: %w", err)
	}
	return r.controlling, r.tiebreaker, nil
}

func requestPriority(m *stun.Message) (uint32, error) {
	p, err := getPriority(m)
	if err != nil {
		return 0, fmt.Errorf("agent: request without PRIORITY: %w", err)
	}
	return p, nil
}

func mappedAddress(m *stun.Message) (netip.AddrPort, error) {
	var x stun.XORMappedAddress
	if err := x.GetFrom(m); err != nil {
		return netip.AddrPort{}, fmt.Errorf("agent: response without XOR-MAPPED-ADDRESS: %w", err)
	}
	ip, ok := netip.AddrFromSlice(x.IP)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("agent: bad XOR-MAPPED-ADDRESS %v", x.IP)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(x.Port)), nil
}

func errorCode(m *stun.Message) stun.ErrorCode {
	code, _ := errorCodeReason(m)
	return code
}

// errorCodeReason reads ERROR-CODE; code 0 when it is missing.
func errorCodeReason(m *stun.Message) (stun.ErrorCode, string) {
	var e stun.ErrorCodeAttribute
	if err := e.GetFrom(m); err != nil {
		return 0, ""
	}
	return e.Code, string(e.Reason)
}

// attrEndOfStream marks our in-band end of stream (the icetcp-eos
// extension). It is in the comprehension-optional range (RFC 8489 §18.3),
// so an agent that does not know it ignores it; no registered attribute
// uses 0xC1E5.
const attrEndOfStream stun.AttrType = 0xC1E5

// attrInterrupted marks the interruption of our stream (Conn.Abort): the
// sender stopped on purpose before its end, and says so rather than
// vanish. Comprehension-optional too: an older peer ignores the
// indication and reads the FIN that follows as a vanished peer.
const attrInterrupted stun.AttrType = 0xC1E6

// attrSession carries a session indication (icetcp-session, session.go):
// a kind byte (ACK, START, END) and an 8-byte big-endian stream offset.
// Comprehension-optional; only sent to peers that agreed to sessions.
const attrSession stun.AttrType = 0xC1E7

const sessionValueSize = 9

// buildSession encodes a session indication, signed like the end of
// stream: only our peer can move or acknowledge its own stream.
func buildSession(localUfrag, remoteUfrag, remotePwd string, kind byte, off uint64) (*stun.Message, error) {
	v := make([]byte, sessionValueSize)
	v[0] = kind
	binary.BigEndian.PutUint64(v[1:], off)
	m, err := stun.Build(
		stun.TransactionID,
		stun.NewType(stun.MethodBinding, stun.ClassIndication),
		stun.NewUsername(remoteUfrag+":"+localUfrag),
		rawAttr{attrSession, v},
		stun.NewShortTermIntegrity(remotePwd),
		stun.Fingerprint,
	)
	if err != nil {
		return nil, fmt.Errorf("agent: build session indication: %w", err)
	}
	return m, nil
}

// errBadSession rejects a malformed session indication.
var errBadSession = errors.New("agent: malformed session indication")

// sessionOf reads a session indication; ok is false when m carries none.
func sessionOf(m *stun.Message) (kind byte, off uint64, ok bool, err error) {
	v, gerr := m.Get(attrSession)
	if gerr != nil {
		return 0, 0, false, nil
	}
	if len(v) != sessionValueSize || v[0] < sessAck || v[0] > sessEnd {
		return 0, 0, true, fmt.Errorf("%w: %d-byte value, kind %d", errBadSession, len(v), firstByte(v))
	}
	return v[0], binary.BigEndian.Uint64(v[1:]), true, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// attrMove marks a check that nominates the session's next path
// (icetcp-session). Comprehension-optional.
const attrMove stun.AttrType = 0xC1E8

func isMove(m *stun.Message) bool {
	_, err := m.Get(attrMove)
	return err == nil
}

// streamEnd is how an in-band indication ends the peer's stream.
type streamEnd uint8

const (
	endNone        streamEnd = iota
	endOfStream              // all was sent (CloseWrite)
	endInterrupted           // stopped before its end (Abort)
)

// buildEOS encodes the end-of-stream indication (or, with interrupted,
// the interruption): a Binding indication signed with the remote password
// like a check, so that only our peer's own stream can be ended by it.
func buildEOS(localUfrag, remoteUfrag, remotePwd string, interrupted bool) (*stun.Message, error) {
	mark := attrEndOfStream
	if interrupted {
		mark = attrInterrupted
	}
	m, err := stun.Build(
		stun.TransactionID,
		stun.NewType(stun.MethodBinding, stun.ClassIndication),
		stun.NewUsername(remoteUfrag+":"+localUfrag),
		rawAttr{mark, nil},
		stun.NewShortTermIntegrity(remotePwd),
		stun.Fingerprint,
	)
	if err != nil {
		return nil, fmt.Errorf("agent: build end-of-stream indication: %w", err)
	}
	return m, nil
}

// endOf tells which end an indication carries.
func endOf(m *stun.Message) streamEnd {
	if _, err := m.Get(attrInterrupted); err == nil {
		return endInterrupted
	}
	if _, err := m.Get(attrEndOfStream); err == nil {
		return endOfStream
	}
	return endNone
}

// rawAttr adds an attribute with a fixed value.
type rawAttr struct {
	t stun.AttrType
	v []byte
}

func (r rawAttr) AddTo(m *stun.Message) error {
	m.Add(r.t, r.v)
	return nil
}
