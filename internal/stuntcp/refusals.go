package stuntcp

// Why the server turned a connection or a probe away. The names are the
// labels of Stats.Refusals and of the log lines.
const (
	reasonMaxConns     = "max-conns"             // MaxConns connections open
	reasonPerIP        = "per-ip"                // MaxConnsPerIP from that source
	reasonFirstMessage = "first-message-timeout" // no complete request within FirstMessageTimeout
	reasonNotSTUN      = "not-stun"              // the bytes cannot start a STUN message
	reasonTooLarge     = "too-large"             // announced body over the server's limit
	reasonMalformed    = "malformed"             // attributes do not parse
	reasonFingerprint  = "bad-fingerprint"       // FINGERPRINT does not match
	reasonProbeRate    = "probe-rate"            // SYN probe: source over its rate
	reasonProbeBusy    = "probe-busy"            // SYN probe: concurrency cap reached
)
