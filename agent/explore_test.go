package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	mrand "math/rand/v2"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/internal/lab/memnet"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// The schedule explorer: two agents on the in-memory network inside a
// synctest bubble, where every connect, accept, write and signaling
// message takes a delay drawn from a seeded hash of the event's name. Each
// seed is one schedule: one topology (relay or not, where the relay sits,
// NATs, roles, a standard peer, gathering ahead) and one set of delays
// that reorders signaling, connection events and checks. The invariant:
// both agents select the same connection, or both fail. A failing seed is
// replayed with
//
//	go test ./agent -run TestExploreSchedules -explore.seed=N -v
//
// Delays come from the event's name, not from the order in which
// goroutines draw them, so a seed replays the same schedule.
var (
	exploreSeeds = flag.Int("explore.seeds", 0, "schedules TestExploreSchedules runs (0: 3000, 300 with -short)")
	exploreSeed  = flag.Int64("explore.seed", -1, "run this one schedule (from a failure report)")
	exploreFirst = flag.Int64("explore.first", 1, "first seed of the run")
)

// exploration is one schedule: a topology and a timing, both from the seed.
type exploration struct {
	seed       int64
	maxDelay   time.Duration
	relay      string // "", "own" (its own address), "shared" (on B's host address, like loopback)
	nat        memnet.Inbound
	natted     bool
	roleA      Role
	roleB      Role
	standardB  bool
	gatherA    bool
	gatherB    bool
	checkTimeo time.Duration
}

// draw is a number in [0, 1) fixed by the seed and a name.
func draw(seed int64, name string) float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(name))
	return float64(h.Sum64()>>11) / (1 << 53)
}

func seedBytes(seed int64, name string) [32]byte {
	var b [32]byte
	for i := range 4 {
		binary.BigEndian.PutUint64(b[8*i:], uint64(draw(seed, fmt.Sprint(name, i))*(1<<53)))
	}
	return b
}

func pick[T any](seed int64, name string, xs ...T) T {
	return xs[int(draw(seed, name)*float64(len(xs)))]
}

func newExploration(seed int64) exploration {
	e := exploration{seed: seed}
	e.maxDelay = pick(seed, "max-delay", 2*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond, time.Second)
	e.relay = pick(seed, "relay", "", "own", "shared", "shared")
	e.natted = pick(seed, "natted", false, false, true)
	e.nat = pick(seed, "nat", memnet.Refuse, memnet.Drop)
	roles := pick(seed, "roles", [2]Role{RoleAuto, RoleAuto}, [2]Role{RoleControlling, RoleControlled},
		[2]Role{RoleControlled, RoleControlling}, [2]Role{RoleControlling, RoleControlling})
	e.roleA, e.roleB = roles[0], roles[1]
	e.standardB = pick(seed, "standard", false, false, false, true)
	e.gatherA, e.gatherB = pick(seed, "gatherA", false, true), pick(seed, "gatherB", false, true)
	e.checkTimeo = pick(seed, "check-timeout", 3*time.Second, 10*time.Second)
	return e
}

func (e exploration) String() string {
	return fmt.Sprintf("seed %d: delays ≤%v, relay %q, natted %v (%v), roles %v/%v, standard B %v, gather ahead %v/%v, check timeout %v",
		e.seed, e.maxDelay, e.relay, e.natted, e.nat, e.roleA, e.roleB, e.standardB, e.gatherA, e.gatherB, e.checkTimeo)
}

// pathCertain reports a schedule in which the agents must connect, not
// only agree: events that take up to a tenth of a check timeout each
// leave every check, and every punch (which runs until its check's
// deadline), time to finish.
func (e exploration) pathCertain() bool {
	return e.maxDelay*10 <= e.checkTimeo
}

// delay is the duration of the event named key: most events are quick,
// a few take up to maxDelay (the cube skews toward zero).
func (e exploration) delay(key string) time.Duration {
	u := draw(e.seed, key)
	return time.Duration(u * u * u * float64(e.maxDelay))
}

// chaosChannel delivers signaling in order, each message after a delay of
// its own (a rendezvous far away, a loaded host).
type chaosChannel struct {
	signaling.Channel
	name string
	e    exploration
	n    int
	due  time.Time
	sent int
}

// Send takes its time too (a starved goroutine, a slow WebSocket write),
// in order.
func (c *chaosChannel) Send(ctx context.Context, m signaling.Message) error {
	c.sent++
	t := time.NewTimer(c.e.delay(fmt.Sprintf("send %s #%d", c.name, c.sent)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.Channel.Send(ctx, m)
}

func (c *chaosChannel) Recv(ctx context.Context) (signaling.Message, error) {
	m, err := c.Channel.Recv(ctx)
	if err != nil {
		return m, err
	}
	c.n++
	due := time.Now().Add(c.e.delay(fmt.Sprintf("recv %s #%d", c.name, c.n)))
	if due.Before(c.due) {
		due = c.due // in order
	}
	c.due = due
	t := time.NewTimer(time.Until(due))
	defer t.Stop()
	select {
	case <-t.C:
		return m, nil
	case <-ctx.Done():
		return signaling.Message{}, ctx.Err()
	}
}

// run connects the two agents of the schedule and checks the invariant.
func (e exploration) run(t *testing.T) error {
	n := memnet.New()
	n.Delay = e.delay
	ca, cb := memConfig(n, ipA, e.roleA), memConfig(n, ipB, e.roleB)
	if e.natted || e.relay != "" {
		stunOn(t, n, stunAddr)
	}
	if e.natted {
		n.AddNAT(memnet.NAT{Public: pubA, Hosts: []netip.Addr{ipA}, Inbound: e.nat})
		n.AddNAT(memnet.NAT{Public: pubB, Hosts: []netip.Addr{ipB}, Inbound: e.nat})
		ca.STUNServers, cb.STUNServers = []string{stunAddr.String()}, []string{stunAddr.String()}
		ca, cb = withClass(ca, eimClass), withClass(cb, eimClass)
	}
	if e.relay != "" {
		r := newMemRelay(n)
		if e.relay == "shared" && !e.natted {
			r.ip = ipB // the relay on the peer's own address, as on loopback
		}
		ca, cb = withRelay(ca, r), withRelay(cb, r)
	}
	cb.StandardOnly = e.standardB
	// Credentials and tie-breakers from the seed too: they decide roles.
	ca.Rand = mrand.NewChaCha8(seedBytes(e.seed, "A"))
	cb.Rand = mrand.NewChaCha8(seedBytes(e.seed, "B"))
	for _, c := range []*Config{&ca, &cb} {
		c.CheckTimeout, c.ConnectTimeout = e.checkTimeo, 30*time.Second
	}
	a, err := New(ca)
	if err != nil {
		return err
	}
	b, err := New(cb)
	if err != nil {
		return err
	}
	defer a.Close()
	defer b.Close()
	if e.gatherA {
		a.Gather(context.Background())
	}
	if e.gatherB {
		b.Gather(context.Background())
	}
	chA, chB := signalingtest.Pair()
	defer chA.Close()
	defer chB.Close()
	type result struct {
		c   *Conn
		err error
		at  time.Time
	}
	ra, rb := make(chan result, 1), make(chan result, 1)
	start := time.Now()
	// Each side closes its signaling as soon as Connect returns, as
	// applications do: whatever the agent still had to say is lost.
	go func() {
		c, err := a.Connect(context.Background(), &chaosChannel{Channel: chA, name: "A", e: e})
		chA.Close()
		ra <- result{c, err, time.Now()}
	}()
	go func() {
		c, err := b.Connect(context.Background(), &chaosChannel{Channel: chB, name: "B", e: e})
		chB.Close()
		rb <- result{c, err, time.Now()}
	}()
	x, y := <-ra, <-rb
	switch {
	case x.err != nil && y.err != nil && !e.pathCertain():
		return nil // both failed, and agree on that: all this schedule asks
	case x.err != nil && y.err != nil:
		return fmt.Errorf("both failed (a path exists): A after %v: %v; B after %v: %v", x.at.Sub(start), x.err, y.at.Sub(start), y.err)
	case x.err != nil || y.err != nil:
		return fmt.Errorf("one side selected, the other failed: A after %v: %v; B after %v: %v", x.at.Sub(start), x.err, y.at.Sub(start), y.err)
	}
	if err := sameConnection(x.c, y.c); err != nil {
		return fmt.Errorf("A selected %v -> %v, B %v -> %v: %w", x.c.Local(), x.c.Remote(), y.c.Local(), y.c.Remote(), err)
	}
	return nil
}

// sameConnection proves that both sides selected one connection: bytes
// written on each arrive on the other (in virtual time, a minute is
// plenty for any delay of the schedule).
func sameConnection(x, y *Conn) error {
	deadline := time.Now().Add(time.Minute)
	x.SetDeadline(deadline)
	y.SetDeadline(deadline)
	errs := make(chan error, 2)
	probe := func(from, to *Conn, word string) {
		if _, err := from.Write([]byte(word)); err != nil {
			errs <- fmt.Errorf("write %q: %w", word, err)
			return
		}
		buf := make([]byte, len(word))
		if _, err := io.ReadFull(to, buf); err != nil || string(buf) != word {
			errs <- fmt.Errorf("read %q: got %q, %w", word, buf, err)
			return
		}
		errs <- nil
	}
	go probe(x, y, "from A")
	go probe(y, x, "from B")
	return errors.Join(<-errs, <-errs)
}

func TestExploreSchedules(t *testing.T) {
	first, count := *exploreFirst, *exploreSeeds
	if count == 0 {
		count = 3000
		if testing.Short() {
			count = 300
		}
	}
	if *exploreSeed >= 0 {
		first, count = *exploreSeed, 1
	}
	failed := 0
	for seed := first; seed < first+int64(count); seed++ {
		e := newExploration(seed)
		var err error
		// A failure is reported outside the bubble: a bubble whose t
		// failed ends the whole test.
		synctest.Test(t, func(t *testing.T) { err = e.run(t) })
		if err != nil {
			failed++
			t.Errorf("%v\n\t%v", e, err)
		}
		if failed >= 5 {
			t.Fatalf("stopping after %d failed schedules", failed)
		}
	}
	t.Logf("%d schedules from seed %d, %d failed", count, first, failed)
}
