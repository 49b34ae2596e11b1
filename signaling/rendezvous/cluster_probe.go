package rendezvous

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A node learns that a member of another node is gone by asking that node:
// a request on the node's ping subject names members, the answer names
// those it still holds. A node that died has no subscriber any more, and
// NATS answers "no responders" at once (the server dropped its interest
// when its connection ended): no timer decides that a node is dead. A
// node that does not answer in time is taken to be alive but slow: its
// members stay (a room-full refusal rather than a third member).

// live returns the members of ms that are still there.
func (c *Cluster) live(ctx context.Context, ms []roomMember) []roomMember {
	var out []roomMember
	byNode := map[string][]string{}
	for _, m := range ms {
		if m.Node == c.node {
			c.mu.Lock()
			_, here := c.members[m.ID]
			c.mu.Unlock()
			if here {
				out = append(out, m)
			}
			continue
		}
		byNode[m.Node] = append(byNode[m.Node], m.ID)
	}
	for node, ids := range byNode {
		for _, id := range c.ask(ctx, node, ids) {
			out = append(out, roomMember{Node: node, ID: id})
		}
	}
	return out
}

// ask returns which of ids node holds: none when it is gone, all when it
// cannot tell in time. Many IDs go in several requests, each well under
// what onPing reads.
func (c *Cluster) ask(ctx context.Context, node string, ids []string) []string {
	var present []string
	for len(ids) > 0 {
		n := min(len(ids), probeBatch)
		got, gone := c.askBatch(ctx, node, ids[:n])
		if gone {
			return nil
		}
		present = append(present, got...)
		ids = ids[n:]
	}
	return present
}

// probeBatch IDs of 24 characters and their commas: under 32 KiB.
const probeBatch = 1000

func (c *Cluster) askBatch(ctx context.Context, node string, ids []string) (present []string, gone bool) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	resp, err := c.nc.RequestWithContext(ctx, c.pingPre+node, []byte(strings.Join(ids, ",")))
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, true
	case err != nil:
		c.log.Debugf("probe of node %s: %v; its members are taken to be there", node, err)
		return ids, false
	}
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	for id := range strings.SplitSeq(string(resp.Data), ",") {
		if asked[id] {
			present = append(present, id)
			delete(asked, id)
		}
	}
	return present, false
}

// onPing answers which of the named members this node holds.
func (c *Cluster) onPing(msg *nats.Msg) {
	if len(msg.Data) > 64<<10 {
		return
	}
	var present []string
	c.mu.Lock()
	for id := range strings.SplitSeq(string(msg.Data), ",") {
		if _, ok := c.members[id]; ok {
			present = append(present, id)
		}
	}
	c.mu.Unlock()
	msg.Respond([]byte(strings.Join(present, ","))) //nolint:errcheck // the asker times out
}

// loop probes the peers of this node's members on other nodes, and
// rewrites the records of this node's rooms before the bucket forgets
// them.
func (c *Cluster) loop() {
	defer close(c.loopDone)
	probe := time.NewTicker(c.cfg.ProbeInterval)
	defer probe.Stop()
	refresh := time.NewTicker(refreshEvery)
	defer refresh.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-probe.C:
			c.probePeers()
		case <-refresh.C:
			c.refresh()
		}
	}
}

// probePeers finds the peers of this node's members that are gone, tells
// those members (peer-left) and takes the gone peers off the records, so
// that their clients can join again.
//
// The peer-left goes through this node's own envelope subject, as a "left"
// envelope from the gone peer, not straight to the member: what the peer
// sent before it went may still be on its way (published before its node
// forgot it, or before that node answered the probe), and NATS delivers
// it to this connection first; a direct peer-left would overtake it, and
// the member would take the room for empty with the peer's last messages
// dropped behind.
func (c *Cluster) probePeers() {
	type peerOf struct {
		peer roomMember
		key  string
	}
	byNode := map[string][]peerOf{}
	var gone []peerOf
	c.mu.Lock()
	for _, m := range c.members {
		switch {
		case m.peer.ID == "", m.peer.ID == m.goneTold:
		case m.peer.Node == c.node:
			if _, ok := c.members[m.peer.ID]; !ok {
				gone = append(gone, peerOf{m.peer, m.key})
			}
		default:
			byNode[m.peer.Node] = append(byNode[m.peer.Node], peerOf{m.peer, m.key})
		}
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	for node, ps := range byNode {
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.peer.ID
		}
		present := map[string]bool{}
		for _, id := range c.ask(ctx, node, ids) {
			present[id] = true
		}
		for _, p := range ps {
			if !present[p.peer.ID] {
				gone = append(gone, p)
			}
		}
	}
	for _, p := range gone {
		c.mu.Lock()
		found := false
		for _, m := range c.members {
			if m.peer.ID == p.peer.ID && m.goneTold != p.peer.ID {
				found = true
				// On an error (counted) the next probe tries again.
				if c.publish(c.node, envelope{Kind: kindLeft, Room: m.room, From: p.peer.ID, Node: p.peer.Node, To: m.id}, nil) == nil {
					m.goneTold = p.peer.ID
				}
			}
		}
		if found {
			c.note(EventPeerGone)
		}
		c.mu.Unlock()
		if found {
			if _, err := c.remove(ctx, p.key, p.peer.ID); err != nil {
				c.log.Debugf("taking gone member %s off its room: %v", p.peer.ID, err)
			}
		}
	}
}

// refresh rewrites the records of this node's rooms that are getting old,
// and closes members that are no longer in their room's record (other
// nodes took this one for dead, and their clients must join again).
func (c *Cluster) refresh() {
	c.mu.Lock()
	byKey := map[string][]*clusterMember{}
	for _, m := range c.members {
		if m.joined {
			byKey[m.key] = append(byKey[m.key], m)
		}
	}
	c.mu.Unlock()
	for key, ms := range byKey {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
		e, err := c.kv.Get(ctx, key)
		var st roomState
		if err == nil {
			st, err = decodeRoomState(e.Value())
		}
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			c.lost(ms)
		case err != nil:
			c.noteLocked(EventStoreError)
		default:
			var lost []*clusterMember
			for _, m := range ms {
				if !slices.ContainsFunc(st.Members, func(o roomMember) bool { return o.ID == m.id }) {
					lost = append(lost, m)
				}
			}
			c.lost(lost)
			if time.Since(e.Created()) > refreshEvery && len(lost) < len(ms) {
				// A lost race means someone else wrote it: fresh either way.
				c.kv.Update(ctx, key, e.Value(), e.Revision()) //nolint:errcheck // see above
			}
		}
		cancel()
	}
}

// lost closes members the cluster no longer has in their rooms.
func (c *Cluster) lost(ms []*clusterMember) {
	for _, m := range ms {
		c.mu.Lock()
		here := c.members[m.id] == m
		if here {
			c.note(EventMemberLost)
		}
		c.mu.Unlock()
		if here {
			go m.conn.kick(ReasonUnavailable, errMemberLost)
		}
	}
}

var errMemberLost = unavailable("cluster", errors.New("this member is no longer in its room's record (the other nodes lost this one for a while); join again"))
