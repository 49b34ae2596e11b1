package rendezvous

import (
	"time"

	"github.com/icetcp/icetcp/internal/turn"
	"github.com/icetcp/icetcp/signaling"
)

// DefaultRelayCredentialTTL is how long the TURN credentials minted for a
// member are good for when Relays.TTL is 0.
const DefaultRelayCredentialTTL = time.Hour

// Relays are the TURN relays a rendezvous announces to every member in its
// joined answer (signaling.Control.Relays). Each member gets TURN REST
// credentials of its own (coturn's --use-auth-secret format, as
// internal/turn mints them): username "<expiry>:<user>", password
// base64(HMAC-SHA1(Secret, username)), so clients never hold the secret,
// and a relay that shares it (icetcp serve --turn-secret, coturn
// --static-auth-secret) takes them. The user part is what the relays count
// quotas by: the join token's subject ("sub:NAME") when the rendezvous
// requires tokens, else the member's source ("ip:ADDRESS", an IPv4
// address or an IPv6 /64), so that one client cannot take a relay's quota
// by joining again.
//
// A relayed session that outlives its credentials loses its allocation at
// the next refresh after the expiry (the relay checks it on every
// request, as coturn does): make TTL longer than the longest session.
type Relays struct {
	// URIs are "turn:HOST:PORT?transport=tcp" or "turns:HOST:PORT", at
	// most signaling.MaxRelays.
	URIs []string
	// Secret is the TURN REST secret the relays share.
	Secret string
	// TTL is how long minted credentials are good for; 0:
	// DefaultRelayCredentialTTL.
	TTL time.Duration
	// Now is the clock of the expiry; nil: time.Now.
	Now func() time.Time
}

// relayMinter mints the announced relays' credentials for each member.
type relayMinter struct {
	cfg Relays
}

func newRelayMinter(cfg Relays) *relayMinter {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultRelayCredentialTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.URIs) > signaling.MaxRelays {
		cfg.URIs = cfg.URIs[:signaling.MaxRelays]
	}
	return &relayMinter{cfg: cfg}
}

// mint returns the relays with credentials for a member from source (its
// per-source key) with the join token's subject (empty without tokens).
func (m *relayMinter) mint(source, subject string) []signaling.Relay {
	if m == nil || len(m.cfg.URIs) == 0 || m.cfg.Secret == "" {
		return nil
	}
	user := "ip:" + source
	if subject != "" {
		user = "sub:" + subject
	}
	// Whole seconds: the username carries Unix seconds, and a TTL of one
	// hour means at least one hour.
	expiry := m.cfg.Now().Add(m.cfg.TTL + time.Second).Truncate(time.Second)
	username, password := turn.RESTCredentials(m.cfg.Secret, user, expiry)
	out := make([]signaling.Relay, len(m.cfg.URIs))
	for i, uri := range m.cfg.URIs {
		out[i] = signaling.Relay{URI: uri, Username: username, Credential: password}
	}
	return out
}

// joinedAnswer is the joined answer for member c of room: the member count
// and the relays announced to it.
func (s *Server) joinedAnswer(c *serverConn, room string, members int) []byte {
	return signaling.EncodeControl(signaling.Control{
		Type: signaling.TypeJoined, Room: room, Members: members,
		Relays: s.relays.mint(c.source, c.subject),
	})
}
