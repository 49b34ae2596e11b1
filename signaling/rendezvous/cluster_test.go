package rendezvous

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/icetcp/icetcp/internal/lab/natsd"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// startNATS runs a real NATS server with JetStream for the test.
func startNATS(t testing.TB) string {
	t.Helper()
	ns, err := natsd.Start(natsd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Close)
	return ns.URL()
}

// testNode is one rendezvous node of a cluster, served on loopback.
type testNode struct {
	url string // ws://
	srv *Server
	nc  *nats.Conn
	ts  *httptest.Server
}

// kill is what a node's crash looks like to the others: its NATS
// connection ends (its subscriptions with it: probes get "no responders"),
// then its clients lose their connections. Nothing is cleaned up in the
// room records.
func (n *testNode) kill(t testing.TB) {
	n.nc.Close()
	if err := n.srv.Close(); err != nil {
		t.Logf("closing the killed node: %v", err)
	}
	n.ts.Close()
}

// startCluster starts n nodes of one cluster (a name of its own per test)
// on the NATS server at natsURL; edit adjusts each Server before it starts.
func startCluster(t testing.TB, natsURL string, n int, edit func(*Server)) []*testNode {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	name := "t" + hex.EncodeToString(b[:])
	var nodes []*testNode
	for range n {
		nc, err := nats.Connect(natsURL, nats.MaxReconnects(0))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := NewCluster(ctx, ClusterConfig{Conn: nc, Name: name, ProbeInterval: 100 * time.Millisecond})
		cancel()
		if err != nil {
			nc.Close()
			t.Fatal(err)
		}
		s := &Server{Cluster: c}
		if edit != nil {
			edit(s)
		}
		ts := httptest.NewServer(s)
		node := &testNode{url: "ws" + strings.TrimPrefix(ts.URL, "http"), srv: s, nc: nc, ts: ts}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Server.Close: %v", err)
			}
			ts.Close()
			nc.Close()
		})
		nodes = append(nodes, node)
	}
	return nodes
}

// TestClusterPeersMeetAcrossNodes: two members of a room on two nodes meet,
// messages sent before the peer arrived are delivered first and in order,
// a third member is refused on either node, peer-left crosses nodes, and
// the room takes a new member through either node after a leave.
func TestClusterPeersMeetAcrossNodes(t *testing.T) {
	checkGoroutines(t)
	nodes := startCluster(t, startNATS(t), 2, nil)
	a := dial(t, nodes[0].url, "r1")
	if a.Members() != 1 {
		t.Fatalf("first member sees %d members", a.Members())
	}
	send(t, a, cand("early-1"))
	send(t, a, cand("early-2"))
	b := dial(t, nodes[1].url, "r1")
	if b.Members() != 2 {
		t.Fatalf("second member sees %d members", b.Members())
	}
	for _, want := range []string{"early-1", "early-2"} {
		if m := recv(t, b); m.Type != signaling.TypeCandidate || !strings.Contains(m.Candidate, want) {
			t.Fatalf("b got %+v, want candidate %s", m, want)
		}
	}
	send(t, b, cand("from-b"))
	if m := recv(t, a); !strings.Contains(m.Candidate, "from-b") {
		t.Fatalf("a got %+v", m)
	}
	for _, n := range nodes {
		if _, err := wsclient.Dial(testCtx(t), n.url, "r1"); !errors.Is(err, signaling.ErrRoomFull) {
			t.Fatalf("third member through %s: %v, want room-full", n.url, err)
		}
	}
	a.Close()
	if m := recv(t, b); m.Type != signaling.TypePeerLeft {
		t.Fatalf("b got %+v, want peer-left", m)
	}
	send(t, b, cand("for-next"))
	c := dial(t, nodes[1].url, "r1") // same node as b this time
	if m := recv(t, c); !strings.Contains(m.Candidate, "for-next") {
		t.Fatalf("c got %+v", m)
	}
	send(t, c, cand("from-c"))
	if m := recv(t, b); !strings.Contains(m.Candidate, "from-c") {
		t.Fatalf("b got %+v", m)
	}
	if st := nodes[0].srv.Stats(); st.Rooms != 0 || st.Cluster[EventEnvelopeInvalid] != 0 {
		t.Fatalf("node 0 after its member left: %+v", st)
	}
}

// TestClusterKeyRoomAcrossNodes: a key room (a secret's) is admitted on
// any node with the proof for that node's challenge, and refused without.
func TestClusterKeyRoomAcrossNodes(t *testing.T) {
	checkGoroutines(t)
	nodes := startCluster(t, startNATS(t), 2, nil)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	d := &wsclient.Dialer{RoomKey: priv}
	a, err := d.Dial(testCtx(t), nodes[0].url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	room := a.Room()
	if _, err := wsclient.Dial(testCtx(t), nodes[1].url, room); !errors.Is(err, signaling.ErrRoomProof) {
		t.Fatalf("squatter on the other node: %v, want room-proof", err)
	}
	b, err := d.Dial(testCtx(t), nodes[1].url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	send(t, a, cand("k"))
	if m := recv(t, b); !strings.Contains(m.Candidate, "k") || b.Members() != 2 {
		t.Fatalf("b got %+v (%d members)", m, b.Members())
	}
}

// TestClusterSimultaneousJoins: three members race for each room through
// two nodes; exactly two get in, every time, and they talk.
func TestClusterSimultaneousJoins(t *testing.T) {
	checkGoroutines(t)
	nodes := startCluster(t, startNATS(t), 2, func(s *Server) { s.MaxConnsPerSource, s.MaxRoomsPerSource = 1000, 1000 })
	const rooms = 40
	var wg sync.WaitGroup
	errs := make(chan error, rooms)
	for i := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := "race-" + hex.EncodeToString([]byte{byte(i)})
			type res struct {
				c   *wsclient.Client
				err error
			}
			out := make(chan res, 3)
			for j := range 3 {
				go func() {
					c, err := wsclient.Dial(testCtx(t), nodes[j%2].url, room)
					out <- res{c, err}
				}()
			}
			var in []*wsclient.Client
			full := 0
			for range 3 {
				r := <-out
				switch {
				case r.err == nil:
					in = append(in, r.c)
				case errors.Is(r.err, signaling.ErrRoomFull):
					full++
				default:
					errs <- r.err
				}
			}
			defer func() {
				for _, c := range in {
					c.Close()
				}
			}()
			if len(in) != 2 || full != 1 {
				errs <- errors.New(room + ": " + string(rune('0'+len(in))) + " admitted")
				return
			}
			if err := in[0].Send(testCtx(t), cand("x")); err != nil {
				errs <- err
				return
			}
			if m, err := in[1].Recv(testCtx(t)); err != nil || !strings.Contains(m.Candidate, "x") {
				errs <- errors.Join(errors.New(room+": no message across"), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestClusterNodeDies: a node dies while each of its members is in a room
// with a member of the other node. The live members learn that their peer
// is gone (peer-left); the dead node's clients join again through the
// live node, are admitted (the dead members are taken off the room
// records), and the rooms carry messages again. Rooms wholly on the live
// node are not disturbed.
func TestClusterNodeDies(t *testing.T) {
	checkGoroutines(t)
	nodes := startCluster(t, startNATS(t), 2, nil)
	live, dead := nodes[0], nodes[1]
	a := dial(t, live.url, "cross")
	b := dial(t, dead.url, "cross")
	send(t, b, cand("before"))
	if m := recv(t, a); !strings.Contains(m.Candidate, "before") {
		t.Fatalf("a got %+v", m)
	}
	x, y := dial(t, live.url, "local"), dial(t, live.url, "local")
	dead.kill(t)
	if _, err := b.Recv(testCtx(t)); err == nil {
		t.Fatal("b's connection survived its node")
	}
	if m := recv(t, a); m.Type != signaling.TypePeerLeft {
		t.Fatalf("a got %+v, want peer-left", m)
	}
	b2 := dial(t, live.url, "cross")
	if b2.Members() != 2 {
		t.Fatalf("b rejoined with %d members", b2.Members())
	}
	send(t, b2, cand("after"))
	if m := recv(t, a); !strings.Contains(m.Candidate, "after") {
		t.Fatalf("a got %+v", m)
	}
	send(t, x, cand("local"))
	if m := recv(t, y); !strings.Contains(m.Candidate, "local") {
		t.Fatalf("y got %+v", m)
	}
	if st := live.srv.Stats(); st.Cluster[EventPeerGone] != 1 {
		t.Fatalf("live node's events %v, want one peer gone", st.Cluster)
	}
}

// TestClusterLimitsPerNode: rooms per source are counted on the node the
// room was opened through (a global count would need every join to
// serialize on one record): a source at its limit on one node is refused
// there and served by another.
func TestClusterLimitsPerNode(t *testing.T) {
	checkGoroutines(t)
	nodes := startCluster(t, startNATS(t), 2, func(s *Server) { s.MaxRoomsPerSource = 2 })
	dial(t, nodes[0].url, "l1")
	dial(t, nodes[0].url, "l2")
	if _, err := wsclient.Dial(testCtx(t), nodes[0].url, "l3"); !errors.Is(err, signaling.ErrTooManyRooms) {
		t.Fatalf("third room on node 0: %v, want too-many-rooms", err)
	}
	dial(t, nodes[1].url, "l3")
	// Joining a room someone else opened charges nothing.
	dial(t, nodes[0].url, "l3")
	if st := nodes[0].srv.Stats(); st.Refused[ReasonTooManyRoomsPerSource] != 1 || st.Rooms != 3 {
		t.Fatalf("node 0: %+v", st)
	}
}

func cand(tag string) signaling.Message {
	return signaling.Message{Type: signaling.TypeCandidate, Candidate: strings.Replace(testCand, "10.0.0.1", "10.0.0.1 "+tag, 1)}
}

func send(t *testing.T, c signaling.Channel, m signaling.Message) {
	t.Helper()
	if err := c.Send(testCtx(t), m); err != nil {
		t.Fatalf("send %s: %v", m.Type, err)
	}
}

// TestClusterAskManyMembers: a probe of a node about more members than fit
// in one request (onPing reads 64 KiB) comes back with exactly those the
// node holds, not with all of them after the timeout; a node whose
// subscriptions are gone from the NATS server holds none (NATS: no
// responders).
func TestClusterAskManyMembers(t *testing.T) {
	checkGoroutines(t)
	nodes := startCluster(t, startNATS(t), 2, nil)
	a, b := nodes[0].srv.Cluster, nodes[1].srv.Cluster
	var ids []string
	a.mu.Lock()
	for i := range 3 * probeBatch {
		id := randomID(memberIDLen)
		ids = append(ids, id)
		if i%6 != 0 {
			a.members[id] = &clusterMember{id: id}
		}
	}
	held := len(a.members)
	a.mu.Unlock()
	got := b.ask(context.Background(), a.node, ids)
	if len(got) != held {
		t.Fatalf("%d of %d held members reported", len(got), held)
	}
	a.mu.Lock()
	for _, id := range got {
		if a.members[id] == nil {
			t.Errorf("%s reported but not held", id)
		}
	}
	clear(a.members)
	a.mu.Unlock()
	// Gone from the server's point of view: the UNSUBs are processed
	// before the flush's PONG comes back. (A closed connection is the
	// same once the server has seen it close, which it does on its own
	// time: TestClusterNodeDies waits for that through peer-left.)
	a.unsubscribe()
	if err := nodes[0].nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := b.ask(context.Background(), a.node, ids); got != nil {
		t.Fatalf("a node without subscriptions holds %d members", len(got))
	}
}

// TestClusterPeerGoneAfterItsMessages: when a probe finds a member's peer
// gone, the member gets what the peer sent before it went, then
// peer-left; not peer-left first with the peer's last messages dropped
// behind it. The peer's message is on its way through NATS when the probe
// runs (published, then the peer forgotten, then probed: what a peer that
// sends and closes at once looks like to a probe that runs just then).
func TestClusterPeerGoneAfterItsMessages(t *testing.T) {
	checkGoroutines(t)
	nodes := startCluster(t, startNATS(t), 1, nil)
	c := nodes[0].srv.Cluster
	a := dial(t, nodes[0].url, "gone")
	c.mu.Lock()
	var ma *clusterMember
	for _, m := range c.members {
		ma = m
	}
	c.mu.Unlock()
	b := dial(t, nodes[0].url, "gone")
	send(t, b, cand("first")) // a's node knows b for a's peer once a has it
	if m := recv(t, a); !strings.Contains(m.Candidate, "first") {
		t.Fatalf("a got %+v", m)
	}
	last, err := signaling.Encode(cand("last"))
	if err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	var mb *clusterMember
	for _, m := range c.members {
		if m != ma {
			mb = m
		}
	}
	if mb == nil || ma.peer.ID != mb.id {
		c.mu.Unlock()
		t.Fatal("the second member is not the first one's peer")
	}
	if err := c.publish(c.node, envelope{Kind: kindMsg, Room: mb.room, From: mb.id, Node: c.node, To: ma.id}, last); err != nil {
		c.mu.Unlock()
		t.Fatal(err)
	}
	c.forget(mb)
	c.mu.Unlock()
	c.probePeers()
	if m := recv(t, a); m.Type != signaling.TypeCandidate || !strings.Contains(m.Candidate, "last") {
		t.Fatalf("a got %+v, want the peer's last candidate", m)
	}
	if m := recv(t, a); m.Type != signaling.TypePeerLeft {
		t.Fatalf("a got %+v, want peer-left", m)
	}
	if st := c.stats(); st[EventPeerGone] != 1 || st[EventEnvelopeDropped] != 0 {
		t.Fatalf("events %v, want one peer gone and nothing dropped", st)
	}
}
