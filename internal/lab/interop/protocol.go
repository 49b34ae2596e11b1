package interop

// command is one instruction to a peer; the process peers read it as one
// JSON line on stdin. Data travels as base64 (encoding/json's []byte).
type command struct {
	Op    string `json:"op"` // credentials, candidate, end-of-candidates, send, close, quit
	Ufrag string `json:"ufrag,omitempty"`
	Pwd   string `json:"pwd,omitempty"`
	Line  string `json:"line,omitempty"`
	Data  []byte `json:"data,omitempty"`
	// Role and SDP are for the libwebrtc peer, which needs the remote
	// description as a whole.
	Role string `json:"role,omitempty"`
}

// event is one report from a peer; process peers write it as one JSON
// line on stdout.
type event struct {
	Ev     string `json:"ev"` // credentials, candidate, gathering-done, state, selected, data, read-end, sent, error
	Ufrag  string `json:"ufrag,omitempty"`
	Pwd    string `json:"pwd,omitempty"`
	Line   string `json:"line,omitempty"`
	SDP    string `json:"sdp,omitempty"`
	State  string `json:"state,omitempty"`
	Local  string `json:"local,omitempty"`
	Remote string `json:"remote,omitempty"`
	Data   []byte `json:"data,omitempty"`
	Error  string `json:"error,omitempty"`
	N      int    `json:"n,omitempty"`
}

// Peer states, the same words for every agent: libnice's READY,
// pion's Connected and libwebrtc's connected/completed are StateConnected.
const (
	StateChecking  = "checking"
	StateConnected = "connected"
	StateFailed    = "failed"
)
