package interop

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/signaling/sdp"
)

// TestWebRTC connects icetcp and libwebrtc in both roles and with a role
// conflict, up to libwebrtc's ICE connected state (its data path needs
// DTLS, which is not icetcp's).
func TestWebRTC(t *testing.T) {
	for _, tc := range []struct {
		name              string
		webrtcControlling bool
		role              agent.Role
	}{
		{"libwebrtc controlled", false, agent.RoleAuto},
		{"libwebrtc controlling", true, agent.RoleAuto},
		{"both controlling", true, agent.RoleControlling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := StartWebRTC(t, Options{Controlling: tc.webrtcControlling})
			s := newAgent(t, agent.Config{Role: tc.role})
			conn := s.connect(t, p)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.WaitState(ctx, StateConnected); err != nil {
				t.Fatalf("libwebrtc: %v (icetcp selected %s -> %s)", err, conn.Local().Marshal(), conn.Remote().Marshal())
			}
			t.Logf("icetcp selected %s -> %s", conn.Local().Marshal(), conn.Remote().Marshal())
		})
	}
}

// TestLiveSDP parses the SDP libnice and libwebrtc write on this machine
// with signaling/sdp and every TCP candidate in it with package candidate.
func TestLiveSDP(t *testing.T) {
	for _, kind := range []string{"libnice", "libwebrtc"} {
		for _, controlling := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s controlling=%v", kind, controlling), func(t *testing.T) {
				var p *Peer
				if kind == "libnice" {
					p = StartLibnice(t, Options{Controlling: controlling})
				} else {
					p = StartWebRTC(t, Options{Controlling: controlling})
				}
				if !controlling {
					// The answering libwebrtc writes its description only
					// once it has an offer: let an icetcp agent make one.
					s := newAgent(t, agent.Config{})
					ch := p.Channel()
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					go s.a.Connect(ctx, ch)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				raw, err := p.LocalSDP(ctx)
				if err != nil {
					t.Fatal(err)
				}
				a, err := sdp.Parse(raw)
				if err != nil {
					t.Fatalf("sdp.Parse: %v\n%s", err, raw)
				}
				if a.Ufrag == "" || a.Pwd == "" || len(a.TCPCandidates()) == 0 {
					t.Fatalf("parsed %+v from\n%s", a, raw)
				}
				for _, c := range a.TCPCandidates() {
					if _, err := candidate.Parse(c); err != nil {
						t.Errorf("candidate.Parse(%q): %v", c, err)
					}
				}
				// Round trip: what we write about it, it would read back.
				if b, err := sdp.Parse(sdp.Marshal(a)); err != nil || b.Ufrag != a.Ufrag || len(b.Candidates) != len(a.Candidates) {
					t.Errorf("round trip: %+v, %v", b, err)
				}
			})
		}
	}
}
