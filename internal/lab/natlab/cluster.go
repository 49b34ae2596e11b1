package natlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/secure"
)

// A rendezvous cluster in the lab: a NATS server (JetStream) and two
// `icetcp serve --cluster` nodes in the server namespace, on ServerAddr,
// each with its own rendezvous, STUN and TURN ports and relay port range.
// Every node has the fleet's TURN REST secret and announces its own relay
// and the other node's: a peer's credentials, minted by its node, work on
// both relays. Two relays of one host cannot relay to each other (a relay
// never connects to its own host), so two peers meet on whichever relay
// both have an allocation on.

// Ports of the cluster's servers at ServerAddr.
const (
	natsPort = 4222
)

// clusterNodePorts are node i's rendezvous and STUN/TURN ports, and its
// relay port range (disjoint, so two relays never race for a port).
func clusterNodePorts(i int) (signal, stun, minPort, maxPort uint16) {
	return uint16(signalPort + i), uint16(stunPort + i), uint16(49152 + 8192*i), uint16(49152 + 8192*i + 8191)
}

// ClusterConfig configures NewClusterLab.
type ClusterConfig struct {
	// Binary is the icetcp executable; built with the lab tag (its
	// `lab nats-server` runs the NATS server).
	Binary string
	// Env is added to the environment of every process.
	Env []string
	// A and B are the peers' NAT profiles; Delay each peer link's.
	A, B  string
	Delay delayline.LinkConfig
}

// ClusterLab is a NAT lab whose server namespace runs a rendezvous
// cluster of two nodes.
type ClusterLab struct {
	Lab   *Lab
	cfg   ClusterConfig
	nats  *proc
	nodes [2]*proc
	mu    sync.Mutex
}

// NewClusterLab builds the lab and starts NATS and both nodes.
func NewClusterLab(ctx context.Context, cfg ClusterConfig) (_ *ClusterLab, err error) {
	if cfg.Binary == "" {
		return nil, errors.New("natlab: cluster: no icetcp binary given")
	}
	lab, err := New(ctx, Config{A: cfg.A, B: cfg.B, Delay: cfg.Delay})
	if err != nil {
		return nil, err
	}
	c := &ClusterLab{Lab: lab, cfg: cfg}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	natsAddr := netip.AddrPortFrom(ServerAddr, natsPort)
	if c.nats, err = lab.startProc(ctx, cfg.Env, cfg.Binary, "lab", "nats-server", "--addr", natsAddr.String()); err != nil {
		return nil, err
	}
	if err := lab.waitAccepting(ctx, c.nats, lab.Server, natsAddr); err != nil {
		return nil, err
	}
	var secret [16]byte
	rand.Read(secret[:])
	for i := range c.nodes {
		if err := c.StartNode(ctx, i, hex.EncodeToString(secret[:])); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// StartNode starts node i (0 or 1).
func (c *ClusterLab) StartNode(ctx context.Context, i int, secret string) error {
	sig, stun, lo, hi := clusterNodePorts(i)
	_, otherSTUN, _, _ := clusterNodePorts(1 - i)
	args := []string{"serve",
		"--cluster", "nats://" + netip.AddrPortFrom(ServerAddr, natsPort).String(), "--cluster-name", "lab",
		"--signal-addr", netip.AddrPortFrom(ServerAddr, sig).String(),
		"--stun-addr", netip.AddrPortFrom(ServerAddr, stun).String(), "--relay-ip", ServerAddr.String(),
		"--relay-min-port", strconv.Itoa(int(lo)), "--relay-max-port", strconv.Itoa(int(hi)),
		"--announce-relay", "turn:" + netip.AddrPortFrom(ServerAddr, otherSTUN).String() + "?transport=tcp",
		"--drain", "0",
	}
	env := append(append([]string(nil), c.cfg.Env...), "ICETCP_TURN_SECRET="+secret)
	p, err := c.Lab.startProc(ctx, env, c.cfg.Binary, args...)
	if err != nil {
		return err
	}
	for _, port := range []uint16{sig, stun} {
		if err := c.Lab.waitAccepting(ctx, p, c.Lab.Server, netip.AddrPortFrom(ServerAddr, port)); err != nil {
			p.stop()
			return err
		}
	}
	c.mu.Lock()
	c.nodes[i] = p
	c.mu.Unlock()
	return nil
}

// KillNode kills node i's process (SIGKILL to its group): nothing of it
// says goodbye to the cluster.
func (c *ClusterLab) KillNode(i int) {
	c.mu.Lock()
	p := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// NodeURL is node i's rendezvous.
func NodeURL(i int) string {
	sig, _, _, _ := clusterNodePorts(i)
	return "ws://" + netip.AddrPortFrom(ServerAddr, sig).String()
}

// NodeRelay is node i's relay as the nodes announce it.
func NodeRelay(i int) string {
	_, stun, _, _ := clusterNodePorts(i)
	return "turn:" + netip.AddrPortFrom(ServerAddr, stun).String() + "?transport=tcp"
}

// Log is what the servers printed so far.
func (c *ClusterLab) Log() string {
	var b strings.Builder
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range append([]*proc{c.nats}, c.nodes[:]...) {
		if p != nil {
			fmt.Fprintf(&b, "--- %d %s ---\n%s\n", i, p.name, p.out.String())
		}
	}
	return b.String()
}

// Close stops the servers and removes the lab.
func (c *ClusterLab) Close() error {
	for i := range c.nodes {
		c.KillNode(i)
	}
	if c.nats != nil {
		c.nats.stop()
	}
	return c.Lab.Close()
}

// ClusterTrial is a trial of the cluster lab: what the matrix measures,
// and what each side was told and used.
type ClusterTrial struct {
	TrialResult
	// Announced are the relays each side's rendezvous announced; Relays
	// the relays each side got an allocation on.
	Announced, Relays [2][]string
	// Logs are both sides' stderr.
	Logs [2]string
}

// Trial runs `icetcp connect --secret` on A through node nodeA and on B
// through node nodeB, with no TURN flag (only the rendezvous and STUN of
// its node): each exchanges a random payload of size bytes.
func (c *ClusterLab) Trial(ctx context.Context, nodeA, nodeB, size int, timeout time.Duration) ClusterTrial {
	s := secure.NewSecret()
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	var sides [2]side
	var wg sync.WaitGroup
	for i, h := range []Host{c.Lab.A, c.Lab.B} {
		n := []int{nodeA, nodeB}[i]
		_, stun, _, _ := clusterNodePorts(n)
		sd := &sides[i]
		sd.sent = make([]byte, size)
		rand.Read(sd.sent)
		cmd := c.Lab.Command(tctx, h, c.cfg.Binary, "connect", "--json", "--signal", NodeURL(n),
			"--stun", netip.AddrPortFrom(ServerAddr, stun).String())
		cmd.Env = append(append(os.Environ(), c.cfg.Env...), "ICETCP_SECRET="+s.String())
		cmd.Stdin = bytes.NewReader(sd.sent)
		cmd.Stdout, cmd.Stderr = &sd.stdout, &sd.stderr
		wg.Add(1)
		go func() {
			defer wg.Done()
			sd.err = cmd.Run()
			sd.timedOut = tctx.Err() != nil
		}()
	}
	wg.Wait()
	var tr ClusterTrial
	tr.TrialResult = evaluateTrial(sides)
	tr.A, tr.B, tr.Room = c.cfg.A, c.cfg.B, secure.RoomName(s)
	tr.ElapsedMs = float64(time.Since(start).Milliseconds())
	for i := range sides {
		tr.Logs[i] = sides[i].stderr.String()
		tr.Announced[i], tr.Relays[i] = relayEvents(sides[i].stderr.Bytes())
	}
	return tr
}

// relayEvents reads a connect's "announced" and "relay" events.
func relayEvents(stderr []byte) (announced, relays []string) {
	for _, line := range strings.Split(string(stderr), "\n") {
		var e struct {
			Event  string   `json:"event"`
			Relays []string `json:"relays"`
			Server string   `json:"server"`
		}
		if json.Unmarshal([]byte(strings.TrimSpace(line)), &e) != nil {
			continue
		}
		switch e.Event {
		case "announced":
			announced = e.Relays
		case "relay":
			relays = append(relays, e.Server)
		}
	}
	return announced, relays
}
