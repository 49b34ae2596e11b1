package natlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// A Stage is a lab with its servers running, for tests that drive the
// peers themselves and break things while a session runs: they start
// `icetcp connect` on both peers (Session), act on the lab (BlockPeers,
// RestartNAT, KillRelay), and judge what both sides printed.
//
// The relay runs in a process of its own (a second `icetcp serve`, the
// embedded relay), so that killing it leaves the rendezvous and STUN
// running: a session that lost its relay may restart ICE over them. It
// is the only relay the peers know: the rendezvous announces none
// (--no-announce), and its own relay has a secret nobody is told.
type Stage struct {
	*Lab
	bin      string
	env      []string
	rv       *proc // rendezvous and STUN, with the RFC 5780 alternate address
	relay    *proc // the TURN relay
	turnPass string
}

// StageConfig configures NewStage.
type StageConfig struct {
	Lab Config
	// Binary is the icetcp executable; Env is added to the environment of
	// every process it runs (serve and connect).
	Binary string
	Env    []string
}

// Ports of the stage's relay process at ServerAddr (the rendezvous
// process keeps signalPort and stunPort, and the alternate STUN ports).
const (
	stageRelayPort  = 3490
	stageRelaySigPt = 8090 // serve always runs a rendezvous; nobody uses this one
)

// NewStage builds the lab and starts its servers, waiting until each
// accepts connections from A. ctx bounds the building only: the servers
// run until Close.
func NewStage(ctx context.Context, sc StageConfig) (_ *Stage, err error) {
	if sc.Binary == "" {
		return nil, errors.New("natlab: stage: no icetcp binary given")
	}
	l, err := New(ctx, sc.Lab)
	if err != nil {
		return nil, err
	}
	s := &Stage{Lab: l, bin: sc.Binary, env: sc.Env}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	var pass [12]byte
	rand.Read(pass[:])
	s.turnPass = hex.EncodeToString(pass[:])

	sig := netip.AddrPortFrom(ServerAddr, signalPort)
	stun := netip.AddrPortFrom(ServerAddr, stunPort)
	// ctx bounds the building; the servers run until Close.
	run := context.WithoutCancel(ctx)
	if s.rv, err = l.startProc(run, sc.Env, sc.Binary, "serve", "--signal-addr", sig.String(),
		"--stun-addr", stun.String(), "--stun-alt-addr", ServerAltAddr.String(), "--no-announce"); err != nil {
		return nil, fmt.Errorf("natlab: stage: %w", err)
	}
	turn := netip.AddrPortFrom(ServerAddr, stageRelayPort)
	if s.relay, err = l.startProc(run, sc.Env, sc.Binary, "serve",
		"--signal-addr", netip.AddrPortFrom(ServerAddr, stageRelaySigPt).String(),
		"--stun-addr", turn.String(), "--relay-ip", ServerAddr.String(),
		"--turn-user", turnUser, "--turn-pass", s.turnPass, "--turn-user-quota", labUserQuota); err != nil {
		return nil, fmt.Errorf("natlab: stage: %w", err)
	}
	for _, w := range []struct {
		p  *proc
		ap netip.AddrPort
	}{{s.rv, sig}, {s.rv, stun}, {s.relay, turn}} {
		if err := l.waitAccepting(ctx, w.p, l.A, w.ap); err != nil {
			return nil, fmt.Errorf("natlab: stage: %w", err)
		}
	}
	return s, nil
}

// connectArgs are the server flags of `icetcp connect` on the stage, and
// the environment with the TURN password.
func (s *Stage) connectArgs() (args, env []string) {
	turn := netip.AddrPortFrom(ServerAddr, stageRelayPort)
	args = []string{"--signal", "ws://" + netip.AddrPortFrom(ServerAddr, signalPort).String(),
		"--stun", netip.AddrPortFrom(ServerAddr, stunPort).String(),
		"--turn", "turn:" + turn.String() + "?transport=tcp", "--turn-user", turnUser}
	return args, []string{"ICETCP_TURN_PASS=" + s.turnPass}
}

// KillRelay kills the relay process (SIGKILL: its connections end as the
// kernel closes them) and waits for it to be gone.
func (s *Stage) KillRelay() {
	s.relay.stop()
}

// ServerLog is what the rendezvous and the relay printed so far.
func (s *Stage) ServerLog() string {
	var b strings.Builder
	if s.rv != nil {
		b.WriteString("--- rendezvous ---\n" + s.rv.out.String())
	}
	if s.relay != nil {
		b.WriteString("\n--- relay ---\n" + s.relay.out.String())
	}
	return b.String()
}

// Close stops the servers and removes the lab.
func (s *Stage) Close() error {
	for _, p := range []*proc{s.relay, s.rv} {
		if p != nil {
			p.stop()
		}
	}
	return s.Lab.Close()
}
