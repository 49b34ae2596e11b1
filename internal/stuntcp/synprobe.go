package stuntcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pion/stun"
)

// AttrSYNProbe is the SYN-PROBE attribute, an icetcp extension. Its type
// 0xC4C7 is comprehension-optional (0x8000-0xFFFF, RFC 8489 §14/§18.3), so a
// server that does not know it ignores it, and lies in the part of that
// range IANA assigns by expert review (0xC000-0xFFFF), in the block
// 0xC061-0xFFFF that the STUN Attributes registry lists as unassigned
// (checked against the registry copy in pion/stun v0.6.1's testdata; the
// nearest assigned neighbours are Google's 0xC057-0xC060). See doc.go.
const AttrSYNProbe stun.AttrType = 0xC4C7

// synProbeLen is the value length: outcome, decline reason, elapsed ms.
const synProbeLen = 4

// ProbeOutcome is what became of a SYN probe.
type ProbeOutcome uint8

// Outcomes. ProbeRequested is the value of the attribute in a request.
const (
	ProbeRequested   ProbeOutcome = iota // in a request: "please probe me"
	ProbeRefused                         // the SYN was answered with RST
	ProbeTimedOut                        // no answer within the server's probe timeout
	ProbeConnected                       // the handshake completed (the server then closed)
	ProbeUnreachable                     // ICMP unreachable or another connect error
	ProbeDeclined                        // not performed; the Decline field says why
	probeOutcomes                        // count, for validation
)

var probeOutcomeNames = [...]string{"requested", "refused", "timed-out", "connected", "unreachable", "declined"}

func (o ProbeOutcome) String() string {
	if o < probeOutcomes {
		return probeOutcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// ProbeDecline says why a server did not probe.
type ProbeDecline uint8

// Reasons for declining a probe.
const (
	DeclineNone        ProbeDecline = iota // the probe was performed
	DeclineRepeat                          // this connection already had its one probe
	DeclineRate                            // the source IP exceeded its probe rate
	DeclineBusy                            // the server's concurrent probe cap is reached
	DeclineNoAlternate                     // the server has no alternate address to probe from
	probeDeclines
)

var probeDeclineNames = [...]string{"none", "repeat", "rate", "busy", "no-alternate"}

func (d ProbeDecline) String() string {
	if d < probeDeclines {
		return probeDeclineNames[d]
	}
	return fmt.Sprintf("decline(%d)", uint8(d))
}

// SYNProbe is the SYN-PROBE attribute's value. In a Binding request (Outcome
// ProbeRequested) it asks the server to open a TCP connection from its
// alternate address to the request's source address and report what
// happened; in the response it carries that report.
//
//	 0                   1                   2                   3
//	+---------------+---------------+-------------------------------+
//	|    Outcome    |    Decline    |      Elapsed (ms, capped)     |
//	+---------------+---------------+-------------------------------+
type SYNProbe struct {
	Outcome ProbeOutcome
	Decline ProbeDecline  // DeclineNone unless Outcome is ProbeDeclined
	Elapsed time.Duration // how long the connect attempt took; whole ms, at most 65535 ms
}

// ErrBadSYNProbe means a SYN-PROBE attribute value that does not decode.
var ErrBadSYNProbe = errors.New("stuntcp: bad SYN-PROBE attribute")

// AddTo adds the attribute to m (a stun.Setter).
func (p SYNProbe) AddTo(m *stun.Message) error {
	if err := p.validate(); err != nil {
		return err
	}
	ms := min(p.Elapsed.Milliseconds(), 0xFFFF)
	v := make([]byte, synProbeLen)
	v[0], v[1] = byte(p.Outcome), byte(p.Decline)
	binary.BigEndian.PutUint16(v[2:], uint16(ms))
	m.Add(AttrSYNProbe, v)
	return nil
}

// GetFrom decodes the attribute from m (a stun.Getter). A message without
// it returns stun.ErrAttributeNotFound.
func (p *SYNProbe) GetFrom(m *stun.Message) error {
	v, err := m.Get(AttrSYNProbe)
	if err != nil {
		return err
	}
	got, err := DecodeSYNProbe(v)
	if err != nil {
		return err
	}
	*p = got
	return nil
}

// DecodeSYNProbe decodes an attribute value: exactly four bytes, a known
// outcome, a decline reason exactly when the outcome is ProbeDeclined, and
// a zero elapsed time in a request.
func DecodeSYNProbe(v []byte) (SYNProbe, error) {
	if len(v) != synProbeLen {
		return SYNProbe{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadSYNProbe, len(v), synProbeLen)
	}
	p := SYNProbe{
		Outcome: ProbeOutcome(v[0]),
		Decline: ProbeDecline(v[1]),
		Elapsed: time.Duration(binary.BigEndian.Uint16(v[2:])) * time.Millisecond,
	}
	if err := p.validate(); err != nil {
		return SYNProbe{}, err
	}
	return p, nil
}

func (p SYNProbe) validate() error {
	switch {
	case p.Outcome >= probeOutcomes:
		return fmt.Errorf("%w: unknown outcome %d", ErrBadSYNProbe, uint8(p.Outcome))
	case p.Decline >= probeDeclines:
		return fmt.Errorf("%w: unknown decline reason %d", ErrBadSYNProbe, uint8(p.Decline))
	case (p.Outcome == ProbeDeclined) != (p.Decline != DeclineNone):
		return fmt.Errorf("%w: outcome %s with decline reason %s", ErrBadSYNProbe, p.Outcome, p.Decline)
	case p.Outcome == ProbeRequested && p.Elapsed != 0:
		return fmt.Errorf("%w: a request carries an elapsed time", ErrBadSYNProbe)
	case p.Elapsed < 0:
		return fmt.Errorf("%w: negative elapsed time", ErrBadSYNProbe)
	}
	return nil
}

func (p SYNProbe) String() string {
	if p.Outcome == ProbeDeclined {
		return "declined (" + p.Decline.String() + ")"
	}
	if p.Outcome == ProbeRequested {
		return "requested"
	}
	return fmt.Sprintf("%s after %v", p.Outcome, p.Elapsed)
}
