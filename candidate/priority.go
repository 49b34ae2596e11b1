package candidate

// tcpTypeOffset lowers the RFC 8445 §5.1.2.2 UDP type preferences for TCP
// candidates, as pion/ice does by default: when a peer offers both, a UDP
// candidate of the same type stays ahead, and our numbers match pion's.
const tcpTypeOffset = 27

// maxOtherPref is the largest other-pref (13 bits, RFC 6544 §4.2).
const maxOtherPref = 1<<13 - 1

// TypePreference returns the type preference of a TCP candidate: the
// RFC 8445 §5.1.2.2 UDP values (host 126, prflx 110, srflx 100) minus 27,
// giving host 99, prflx 83, srflx 73; relay stays 0 (it cannot go lower).
func TypePreference(t Type) uint32 {
	switch t {
	case Host:
		return 126 - tcpTypeOffset
	case PeerReflexive:
		return 110 - tcpTypeOffset
	case ServerReflexive:
		return 100 - tcpTypeOffset
	}
	return 0
}

// directionPref is the RFC 6544 §4.2 table. The two rows differ because a
// host candidate connects most reliably actively, while behind a NAT
// simultaneous open is the only direction that can punch through.
func directionPref(t Type, tt TCPType) uint16 {
	switch t {
	case Host, Relay:
		switch tt {
		case Active:
			return 6
		case Passive:
			return 4
		case SO:
			return 2
		}
	case ServerReflexive, PeerReflexive:
		switch tt {
		case SO:
			return 6
		case Active:
			return 4
		case Passive:
			return 2
		}
	}
	return 0
}

// LocalPreference returns 2^13*direction-pref + other-pref (RFC 6544 §4.2).
// otherPref above 8191 is clamped so it cannot spill into direction-pref.
func LocalPreference(t Type, tt TCPType, otherPref uint16) uint16 {
	otherPref = min(otherPref, maxOtherPref)
	return 1<<13*directionPref(t, tt) + otherPref
}

// Priority returns 2^24*type-pref + 2^8*local-pref + (256-component)
// (RFC 8445 §5.1.2.1). component is clamped to 1..256, the range in which
// the last term fits its 8 bits.
func Priority(t Type, tt TCPType, otherPref, component uint16) uint32 {
	component = min(max(component, 1), 256)
	return 1<<24*TypePreference(t) +
		1<<8*uint32(LocalPreference(t, tt, otherPref)) +
		(256 - uint32(component))
}
