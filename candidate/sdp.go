package candidate

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode"
)

// MaxLineLength bounds the input Parse accepts. Real lines are under 300
// bytes; the bound keeps a hostile peer from making us split megabytes.
const MaxLineLength = 4096

// MaxPriority is the largest candidate priority RFC 8445 §5.1.2.1 allows
// (2^31 - 1). Above it the pair priority formula could overflow 64 bits.
const MaxPriority = 1<<31 - 1

// maxFoundationLength is the RFC 8445 §5.1.1.3 / RFC 5245 §15.1 bound
// (foundation = 1*32ice-char).
const maxFoundationLength = 32

// Keywords of the candidate-attribute grammar (RFC 8839 §5.1, RFC 6544 §4.5).
const (
	kwTyp     = "typ"
	kwRaddr   = "raddr"
	kwRport   = "rport"
	kwTCPType = "tcptype"
)

// Parse reads one candidate line: "a=candidate:...", "candidate:..." or the
// bare attribute value
//
//	<foundation> <component> TCP <priority> <ip> <port> typ <type>
//	[raddr <ip> rport <port>] tcptype active|passive|so [<ext> <value>]...
//
// tcptype may stand anywhere after typ, before or after raddr/rport and
// among unknown extensions; browsers and libnice disagree on the order, and
// pion/ice/v2 loses tcptype when it is not first. Unknown extensions are
// kept in Ext in order. The transport and the typ and tcptype values are
// case-insensitive; keywords are not. Zones on IPv6 addresses are dropped:
// they name an interface on the sender's host. The port of an Active
// candidate is set to 9 whatever the line says (RFC 6544 §4.5), so that
// Parse and Marshal agree.
//
// The priority must be at most MaxPriority (2^31-1, RFC 8445 §5.1.2.1).
//
// Errors are *ParseError. A non-TCP transport wraps ErrUnsupportedTransport;
// an FQDN or mDNS address (such as "abc.local") wraps ErrFQDN with Field
// "address"; a missing tcptype has Field "tcptype" and wraps ErrMissing.
func Parse(s string) (Candidate, error) {
	if len(s) > MaxLineLength {
		return Candidate{}, &ParseError{Field: "line", Value: s, Err: ErrTooLong}
	}
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "a="); ok {
		if s, ok = strings.CutPrefix(rest, "candidate:"); !ok {
			return Candidate{}, &ParseError{Field: "prefix", Value: rest, Err: errSyntax}
		}
	} else {
		s = strings.TrimPrefix(s, "candidate:")
	}

	p := parser{tok: strings.Fields(s)}
	var c Candidate
	var err error
	if c.Foundation, err = p.foundation(); err != nil {
		return Candidate{}, err
	}
	if c.Component, err = p.component(); err != nil {
		return Candidate{}, err
	}
	if err = p.transport(); err != nil {
		return Candidate{}, err
	}
	if c.Priority, err = p.priority(); err != nil {
		return Candidate{}, err
	}
	if c.Addr, err = p.addrPort("address", "port"); err != nil {
		return Candidate{}, err
	}
	if c.Type, err = p.typ(); err != nil {
		return Candidate{}, err
	}

	haveTCPType := false
	for !p.done() {
		key, _ := p.next()
		switch key {
		case kwRaddr:
			if c.Related.IsValid() {
				return Candidate{}, &ParseError{Field: "raddr", Value: key, Err: errDuplicate}
			}
			if c.Related, err = p.related(); err != nil {
				return Candidate{}, err
			}
		case kwRport:
			// rport is only meaningful right after "raddr <ip>".
			return Candidate{}, &ParseError{Field: "rport", Value: key, Err: errSyntax}
		case kwTCPType:
			if haveTCPType {
				return Candidate{}, &ParseError{Field: "tcptype", Value: key, Err: errDuplicate}
			}
			if c.TCPType, err = p.tcpType(); err != nil {
				return Candidate{}, err
			}
			haveTCPType = true
		default:
			val, ok := p.next()
			if !ok {
				return Candidate{}, &ParseError{Field: "extension", Value: key, Err: ErrMissing}
			}
			c.Ext = append(c.Ext, Extension{Key: key, Value: val})
		}
	}
	if !haveTCPType {
		return Candidate{}, &ParseError{Field: "tcptype", Err: ErrMissing}
	}
	if c.TCPType == Active {
		c.Addr = netip.AddrPortFrom(c.Addr.Addr(), ActivePort)
	}
	return c, nil
}

// parser walks the whitespace-separated tokens of one line.
type parser struct {
	tok []string
	i   int
}

func (p *parser) done() bool { return p.i >= len(p.tok) }

func (p *parser) next() (string, bool) {
	if p.done() {
		return "", false
	}
	p.i++
	return p.tok[p.i-1], true
}

// field returns the next token or a ParseError saying that field is missing.
func (p *parser) field(name string) (string, error) {
	t, ok := p.next()
	if !ok {
		return "", &ParseError{Field: name, Err: ErrMissing}
	}
	return t, nil
}

func (p *parser) foundation() (string, error) {
	t, err := p.field("foundation")
	if err != nil {
		return "", err
	}
	if len(t) > maxFoundationLength || !isIceChars(t) {
		return "", &ParseError{Field: "foundation", Value: t, Err: errSyntax}
	}
	return t, nil
}

func (p *parser) component() (uint16, error) {
	t, err := p.field("component")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(t, 10, 16)
	if err != nil {
		return 0, &ParseError{Field: "component", Value: t, Err: err}
	}
	// RFC 8445 §5.1.2.1: the (256 - component) term needs 1..256.
	if n < 1 || n > 256 {
		return 0, &ParseError{Field: "component", Value: t, Err: errOutOfRange}
	}
	return uint16(n), nil
}

func (p *parser) transport() error {
	t, err := p.field("transport")
	if err != nil {
		return err
	}
	if !strings.EqualFold(t, "tcp") {
		return &ParseError{Field: "transport", Value: t, Err: ErrUnsupportedTransport}
	}
	return nil
}

func (p *parser) priority() (uint32, error) {
	t, err := p.field("priority")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(t, 10, 32)
	if err != nil {
		return 0, &ParseError{Field: "priority", Value: t, Err: err}
	}
	if n > MaxPriority {
		return 0, &ParseError{Field: "priority", Value: t, Err: errOutOfRange}
	}
	return uint32(n), nil
}

// addrPort reads "<ip> <port>", naming errors after ipField and portField.
func (p *parser) addrPort(ipField, portField string) (netip.AddrPort, error) {
	t, err := p.field(ipField)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip, err := netip.ParseAddr(t)
	if err != nil {
		if isHostName(t) {
			err = ErrFQDN
		}
		return netip.AddrPort{}, &ParseError{Field: ipField, Value: t, Err: err}
	}
	t, err = p.field(portField)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(t, 10, 16)
	if err != nil {
		return netip.AddrPort{}, &ParseError{Field: portField, Value: t, Err: err}
	}
	return netip.AddrPortFrom(ip.WithZone(""), uint16(port)), nil
}

func (p *parser) typ() (Type, error) {
	t, err := p.field("typ")
	if err != nil {
		return 0, err
	}
	if t != kwTyp {
		return 0, &ParseError{Field: "typ", Value: t, Err: errSyntax}
	}
	t, err = p.field("typ")
	if err != nil {
		return 0, err
	}
	for _, typ := range []Type{Host, ServerReflexive, PeerReflexive, Relay} {
		if strings.EqualFold(t, typ.String()) {
			return typ, nil
		}
	}
	return 0, &ParseError{Field: "typ", Value: t, Err: errUnknown}
}

// related reads "<ip> rport <port>" after the raddr keyword.
func (p *parser) related() (netip.AddrPort, error) {
	t, err := p.field("raddr")
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip, err := netip.ParseAddr(t)
	if err != nil {
		if isHostName(t) {
			err = ErrFQDN
		}
		return netip.AddrPort{}, &ParseError{Field: "raddr", Value: t, Err: err}
	}
	t, err = p.field("rport")
	if err != nil {
		return netip.AddrPort{}, err
	}
	if t != kwRport {
		return netip.AddrPort{}, &ParseError{Field: "rport", Value: t, Err: errSyntax}
	}
	t, err = p.field("rport")
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := strconv.ParseUint(t, 10, 16)
	if err != nil {
		return netip.AddrPort{}, &ParseError{Field: "rport", Value: t, Err: err}
	}
	return netip.AddrPortFrom(ip.WithZone(""), uint16(port)), nil
}

func (p *parser) tcpType() (TCPType, error) {
	t, err := p.field("tcptype")
	if err != nil {
		return 0, err
	}
	for _, tt := range []TCPType{Active, Passive, SO} {
		if strings.EqualFold(t, tt.String()) {
			return tt, nil
		}
	}
	return 0, &ParseError{Field: "tcptype", Value: t, Err: errUnknown}
}

// isIceChars reports whether s is 1*ice-char (ALPHA / DIGIT / "+" / "/").
func isIceChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// isHostName tells a name (an FQDN or an mDNS ".local" name that browsers
// use to hide host addresses) from a malformed IP literal, so the caller
// can tell "needs resolving" from "garbage".
func isHostName(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return letter
}

// Marshal writes "candidate:<value>" (no "a=" prefix) in the canonical order
//
//	foundation component TCP priority ip port typ T [raddr ip rport port] tcptype X [ext val]...
//
// Active candidates are written with port 9 (RFC 6544 §4.5). raddr/rport
// are written when Related is set. Zones are not written. Extensions that
// could not be read back (empty, containing white space, or named raddr,
// rport or tcptype) are skipped so that the line always parses.
func (c Candidate) Marshal() string {
	var b strings.Builder
	b.Grow(128)
	b.WriteString("candidate:")
	b.WriteString(c.Foundation)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(uint64(c.Component), 10))
	b.WriteString(" TCP ")
	b.WriteString(strconv.FormatUint(uint64(c.Priority), 10))
	port := c.Addr.Port()
	if c.TCPType == Active {
		port = ActivePort
	}
	writeAddrPort(&b, " ", " ", netip.AddrPortFrom(c.Addr.Addr(), port))
	b.WriteString(" typ ")
	b.WriteString(c.Type.String())
	if c.Related.Addr().IsValid() {
		writeAddrPort(&b, " raddr ", " rport ", c.Related)
	}
	b.WriteString(" tcptype ")
	b.WriteString(c.TCPType.String())
	for _, e := range c.Ext {
		if !validExtension(e) {
			continue
		}
		b.WriteByte(' ')
		b.WriteString(e.Key)
		b.WriteByte(' ')
		b.WriteString(e.Value)
	}
	return b.String()
}

func writeAddrPort(b *strings.Builder, beforeIP, beforePort string, ap netip.AddrPort) {
	b.WriteString(beforeIP)
	b.WriteString(ap.Addr().WithZone("").String())
	b.WriteString(beforePort)
	b.WriteString(strconv.FormatUint(uint64(ap.Port()), 10))
}

func validExtension(e Extension) bool {
	switch e.Key {
	case "", kwRaddr, kwRport, kwTCPType:
		return false
	}
	return e.Value != "" &&
		!strings.ContainsFunc(e.Key, unicode.IsSpace) &&
		!strings.ContainsFunc(e.Value, unicode.IsSpace)
}
