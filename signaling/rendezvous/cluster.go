package rendezvous

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pion/logging"

	"github.com/icetcp/icetcp/signaling"
)

// Cluster defaults.
const (
	DefaultClusterName = "icetcp"
	// DefaultProbeInterval is how often a node asks the nodes of its
	// members' peers whether those peers are still there.
	DefaultProbeInterval = 2 * time.Second
	// DefaultClusterTimeout bounds one exchange with NATS (a room record
	// read or written, a probe).
	DefaultClusterTimeout = 5 * time.Second
	// roomTTL is how long a room record lives in the bucket unless it is
	// written again: it only collects the records of rooms whose nodes
	// all died (a live node removes its members when they leave and
	// rewrites the records of its rooms every refreshEvery).
	roomTTL      = 15 * time.Minute
	refreshEvery = 3 * time.Minute
	// casTries bounds the compare-and-set attempts on one room record.
	casTries = 12
)

var clusterNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ClusterConfig configures NewCluster.
type ClusterConfig struct {
	// Conn is the node's connection to NATS, with JetStream enabled on
	// the servers. The Cluster does not close it.
	Conn *nats.Conn
	// Name separates deployments sharing one NATS: it prefixes the
	// subjects and names the bucket (1-32 of [A-Za-z0-9_-]). Every node of
	// one rendezvous uses the same. "": DefaultClusterName.
	Name string
	// Replicas of the room bucket in a JetStream cluster (3 survives the
	// loss of a NATS server). 0: 1.
	Replicas int
	// ProbeInterval: 0 means DefaultProbeInterval.
	ProbeInterval time.Duration
	// Timeout: 0 means DefaultClusterTimeout.
	Timeout time.Duration
}

// Cluster is a rendezvous node's share of rooms kept by all nodes through
// NATS, for Server.Cluster. See the package documentation's "Cluster"
// section for what it guarantees and what it counts per node.
type Cluster struct {
	cfg     ClusterConfig
	nc      *nats.Conn
	kv      jetstream.KeyValue
	node    string // this node's ID, random per process
	subj    string // this node's envelopes
	pingPre string // <name>.ping.: a node's liveness subject is pingPre+ID
	envPre  string // <name>.node.: a node's envelope subject is envPre+ID
	subs    []*nats.Subscription

	// Set by start (Server.init), before any member joins.
	allowed      map[string]bool
	lim          roomLimits
	joinedAnswer func(m *serverConn, room string, members int) []byte
	log          logging.LeveledLogger

	stop     chan struct{}
	loopDone chan struct{}

	mu sync.Mutex
	// guarded by mu
	closed   bool
	started  bool
	members  map[string]*clusterMember // by member ID
	byConn   map[*serverConn]*clusterMember
	local    map[string]int // members on this node per room key
	created  int            // rooms opened by members of this node who are still in them
	bySource map[string]int // the same, per source
	events   map[string]uint64
}

// Cluster events, the label values of Stats.Cluster.
const (
	EventEnvelopeDropped = "envelope-dropped" // for a member not (or no longer) here, or from a peer it no longer has
	EventEnvelopeInvalid = "envelope-invalid"
	EventPeerGone        = "peer-gone"   // a peer's node answered that the peer is gone, or is gone itself
	EventMemberLost      = "member-lost" // a member of this node found out of its room (the others thought this node dead)
	EventStoreError      = "store-error" // a room record could not be read or written
	EventPublishError    = "publish-error"
)

// clusterMember is a member of this node, as the cluster sees it.
type clusterMember struct {
	id     string
	conn   *serverConn
	room   string
	key    string
	source string
	// creator: it opened the room, which is charged to this node's
	// limits until it leaves.
	creator bool
	joined  bool       // the joined answer is on its outbox
	early   [][]byte   // arrived before the joined answer went out
	peer    roomMember // zero: none known
	// goneTold is the peer a probe found gone and told this member of
	// (a "left" envelope on its way through NATS): not probed again.
	goneTold string
	queue    [][]byte // sent while alone, for the next peer
	queued   int
	active   time.Time
}

// NewCluster opens (or creates) the room bucket and starts listening on
// this node's subjects. Give it to a Server, which starts and closes it.
func NewCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Conn == nil {
		return nil, errors.New("rendezvous: cluster: no NATS connection")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultClusterName
	}
	if !clusterNameRE.MatchString(cfg.Name) {
		return nil, fmt.Errorf("rendezvous: cluster name %q: want 1-32 of [A-Za-z0-9_-]", cfg.Name)
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultClusterTimeout
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: cluster: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Name + "-rooms",
		Description: "icetcp rendezvous rooms: who is in each room of two",
		History:     1,
		TTL:         roomTTL,
		Storage:     jetstream.MemoryStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("rendezvous: cluster: the room bucket (is JetStream enabled on the NATS servers?): %w", err)
	}
	c := &Cluster{
		cfg: cfg, nc: cfg.Conn, kv: kv, node: randomID(nodeIDLen),
		pingPre: cfg.Name + ".ping.", envPre: cfg.Name + ".node.",
		stop: make(chan struct{}), loopDone: make(chan struct{}),
		members: map[string]*clusterMember{}, byConn: map[*serverConn]*clusterMember{},
		local: map[string]int{}, bySource: map[string]int{}, events: map[string]uint64{},
		log: logging.NewDefaultLoggerFactory().NewLogger("icetcp-cluster"),
	}
	c.subj = c.envPre + c.node
	for subj, h := range map[string]nats.MsgHandler{c.subj: c.onEnvelope, c.pingPre + c.node: c.onPing} {
		sub, err := c.nc.Subscribe(subj, h)
		if err != nil {
			c.unsubscribe()
			return nil, fmt.Errorf("rendezvous: cluster: subscribe %s: %w", subj, err)
		}
		// A member's messages must not be dropped for a slow reader:
		// bounds well above a burst of trickled candidates for many rooms.
		if err := sub.SetPendingLimits(1<<20, 256<<20); err != nil {
			c.unsubscribe()
			return nil, fmt.Errorf("rendezvous: cluster: %w", err)
		}
		c.subs = append(c.subs, sub)
	}
	// The subscriptions are known to the server before a peer can learn
	// of a member here.
	if err := c.nc.FlushWithContext(ctx); err != nil {
		c.unsubscribe()
		return nil, fmt.Errorf("rendezvous: cluster: %w", err)
	}
	return c, nil
}

// Node is this node's ID in the cluster (random per process).
func (c *Cluster) Node() string { return c.node }

// start is called once by the Server that owns c.
func (c *Cluster) start(allowed []string, lim roomLimits, joined func(*serverConn, string, int) []byte, lf logging.LoggerFactory) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		panic("rendezvous: a Cluster serves one Server")
	}
	c.started = true
	if len(allowed) > 0 {
		c.allowed = make(map[string]bool, len(allowed))
		for _, r := range allowed {
			c.allowed[r] = true
		}
	}
	c.lim, c.joinedAnswer, c.log = lim, joined, lf.NewLogger("icetcp-cluster")
	go c.loop()
}

func (c *Cluster) unsubscribe() {
	for _, s := range c.subs {
		s.Unsubscribe() //nolint:errcheck // closing anyway
	}
}

func (c *Cluster) close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	started := c.started
	c.mu.Unlock()
	if started {
		close(c.stop)
		<-c.loopDone
	}
	c.unsubscribe()
	return nil
}

// roomKey is a room's key in the bucket: a hash, because keys are
// restricted to a smaller alphabet than room names and the bucket need not
// show the names.
func roomKey(room string) string {
	h := sha256.Sum256([]byte("icetcp room\x00" + room))
	return hex.EncodeToString(h[:16])
}

func randomID(n int) string {
	b := make([]byte, n/2)
	rand.Read(b) // crypto/rand does not fail (Go 1.24+)
	return hex.EncodeToString(b)
}

// note counts an event; under mu.
func (c *Cluster) note(event string) { c.events[event]++ }

func (c *Cluster) noteLocked(event string) {
	c.mu.Lock()
	c.note(event)
	c.mu.Unlock()
}

// unavailable wraps a failure to reach the cluster for a client.
func unavailable(what string, err error) error {
	return fmt.Errorf("rendezvous: %s: %w: %w", what, signaling.ErrUnavailable, err)
}

func (c *Cluster) rooms() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.local)
}

// stats returns the event counts.
func (c *Cluster) stats() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]uint64, len(c.events))
	for k, v := range c.events {
		m[k] = v
	}
	return m
}
