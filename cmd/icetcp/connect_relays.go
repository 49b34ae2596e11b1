package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/internal/turn"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// relayFlags are connect's flags about the relays the rendezvous
// announces.
type relayFlags struct {
	noRelay bool
}

func (f *relayFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.noRelay, "no-relay", false, "use no relay the rendezvous announces (explicit --turn servers are still used)")
}

// joinAndGather joins the room and starts the agent's gathering. The
// rendezvous names its relays in its answer to the join, with credentials
// minted for this peer, and the agent takes its TURN servers when it is
// made: so, unless --no-relay, the room is joined first and the agent made
// with the explicit --turn servers and the announced ones after them.
// With --no-relay the agent gathers while the rendezvous is reached.
// On failure nothing is left open; the error is the dial's or the
// agent's, for the caller to report.
func (f *connectFlags) joinAndGather(ctx context.Context, cfg agent.Config, d *wsclient.Dialer, room string, ev *eventWriter) (*agent.Agent, *wsclient.Client, error) {
	if f.noRelay {
		a, err := agent.New(cfg)
		if err != nil {
			return nil, nil, err
		}
		if err := a.Gather(ctx); err != nil {
			a.Close()
			return nil, nil, err
		}
		ch, err := d.Dial(ctx, f.signal, room)
		if err != nil {
			a.Close() // its last events come before the failure's
			return nil, nil, dialHint(err)
		}
		return a, ch, nil
	}
	ch, err := d.Dial(ctx, f.signal, room)
	if err != nil {
		return nil, nil, dialHint(err)
	}
	cfg.TURNServers = append(cfg.TURNServers, announcedTURN(ch, cfg.TURNServers, d.TLSConfig, ev)...)
	a, err := agent.New(cfg)
	if err != nil {
		ch.Close()
		return nil, nil, err
	}
	if err := a.Gather(ctx); err != nil {
		ch.Close()
		a.Close()
		return nil, nil, err
	}
	return a, ch, nil
}

// announcedTURN are the relays the rendezvous announced to ch, as the
// agent's TURN servers, leaving out those it cannot use (with a warning)
// and those the user named with --turn (theirs win).
func announcedTURN(ch *wsclient.Client, explicit []agent.TURNServer, tc *tls.Config, ev *eventWriter) []agent.TURNServer {
	relays, err := ch.Relays()
	if err != nil {
		ev.warning(fmt.Sprintf("the rendezvous announced relays this client cannot use: %v", err))
	}
	var out []agent.TURNServer
	var uris []string
	for _, r := range relays {
		u, err := turn.ParseURI(r.URI)
		if err != nil {
			ev.warning(fmt.Sprintf("announced relay left out: %v", err))
			continue
		}
		if named(explicit, u) || named(out, u) {
			continue
		}
		out = append(out, agent.TURNServer{URI: r.URI, Username: r.Username, Password: r.Credential, TLSConfig: tc.Clone()})
		uris = append(uris, r.URI)
	}
	if len(uris) > 0 {
		ev.emit(map[string]any{"event": "announced", "relays": uris})
	}
	return out
}

// named reports whether servers has one at u.
func named(servers []agent.TURNServer, u turn.URI) bool {
	for _, s := range servers {
		if v, err := turn.ParseURI(s.URI); err == nil && v == u {
			return true
		}
	}
	return false
}
