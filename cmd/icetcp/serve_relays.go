package main

import (
	"flag"
	"strings"
	"time"

	"github.com/icetcp/icetcp/internal/turn"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/rendezvous"
)

// relayOptions are serve's flags for the relays the rendezvous announces.
type relayOptions struct {
	announce   stringList
	credTTL    time.Duration
	noAnnounce bool
}

func (o *relayOptions) register(fs *flag.FlagSet) {
	fs.Var(&o.announce, "announce-relay", "also announce this TURN relay to joining peers, with credentials minted from --turn-secret (repeatable):\n"+
		"turn:HOST:PORT?transport=tcp or turns:HOST:PORT (another node's relay, a coturn with --static-auth-secret)")
	fs.DurationVar(&o.credTTL, "relay-cred-ttl", rendezvous.DefaultRelayCredentialTTL, "lifetime of the TURN credentials minted for each peer (a relayed session loses its allocation at the first refresh after it)")
	fs.BoolVar(&o.noAnnounce, "no-announce", false, "announce no relay to joining peers (they then need connect --turn)")
}

func (o *relayOptions) check(turnSecret string) error {
	if len(o.announce) > 0 && turnSecret == "" {
		return usageErr("--announce-relay needs --turn-secret: the relays' shared TURN REST secret, to mint credentials for each peer")
	}
	if len(o.announce) > 0 && o.noAnnounce {
		return usageErr("--announce-relay and --no-announce exclude each other")
	}
	if len(o.announce) >= signaling.MaxRelays {
		return usageErr("%d --announce-relay: at most %d relays (with this node's own) can be announced", len(o.announce), signaling.MaxRelays-1)
	}
	for _, u := range o.announce {
		if _, err := turn.ParseURI(u); err != nil || !strings.Contains(u, ":") {
			return usageErr("--announce-relay %q: want turn:HOST:PORT?transport=tcp or turns:HOST:PORT", u)
		}
		if len(u) > signaling.MaxRelayURILen {
			return usageErr("--announce-relay: %d bytes, at most %d", len(u), signaling.MaxRelayURILen)
		}
	}
	if o.credTTL < time.Minute {
		return usageErr("--relay-cred-ttl %v: at least a minute", o.credTTL)
	}
	return nil
}

// announced is what the rendezvous announces: this node's relay (when it
// runs one with a REST secret, given or made up) and the relays named by
// --announce-relay, with credentials minted from the REST secret; nil when
// there is nothing to announce.
func (s *server) announced(o relayOptions) *rendezvous.Relays {
	if o.noAnnounce || s.turnSecret == "" {
		return nil
	}
	var uris []string
	if s.relay != nil {
		uris = append(uris, "turn:"+s.turnHostPort()+"?transport=tcp")
	}
	uris = append(uris, o.announce...)
	if len(uris) == 0 {
		return nil
	}
	return &rendezvous.Relays{URIs: uris, Secret: s.turnSecret, TTL: o.credTTL}
}
