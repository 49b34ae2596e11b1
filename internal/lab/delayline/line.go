package delayline

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is one side of a link: each Read returns exactly one IP packet,
// each Write sends exactly one. A TUN device opened with IFF_TUN|IFF_NO_PI
// (an *os.File) behaves like this. Close must unblock a pending Read.
type Endpoint = io.ReadWriteCloser

// Config configures a Line. The zero value works.
type Config struct {
	// QueueLimit is the most packets that may wait on one link; further
	// packets are dropped (tail drop) and counted. Zero means 8192, about
	// 12 MB of 1500-byte packets: enough for 100 MB/s at 100 ms delay.
	QueueLimit int
	// Seed seeds loss and jitter decisions; zero means a random seed.
	Seed uint64
	// Router, when valid, makes the line one router hop (RFC 1812 §5.3.1):
	// it decrements the TTL of every packet it forwards, and a packet that
	// arrives with TTL 1 or 0 is dropped and answered with an ICMP Time
	// Exceeded from this IPv4 address, quoting the packet so that the
	// sender's kernel matches it to its socket (this is what a low-TTL SYN
	// meets on the internet). The zero Addr makes the line a plain segment:
	// TTLs pass unchanged, as between two NATs on one LAN.
	Router netip.Addr
}

// LinkConfig is the impairment applied to packets written into one link.
type LinkConfig struct {
	// Delay is the one-way delay added to every packet (see the package
	// doc for how it composes into a round trip). Zero means none.
	Delay time.Duration
	// Jitter adds a uniformly distributed extra delay in [0, Jitter].
	Jitter time.Duration
	// Loss is the probability in [0, 1] that a packet is dropped.
	Loss float64
	// Reorder lets jittered packets overtake each other. When false, a
	// packet never leaves before one queued earlier on the same link.
	Reorder bool
}

func (lc LinkConfig) validate() error {
	if lc.Delay < 0 || lc.Jitter < 0 {
		return fmt.Errorf("delayline: negative delay or jitter in %+v", lc)
	}
	if lc.Loss < 0 || lc.Loss > 1 {
		return fmt.Errorf("delayline: loss %v outside [0, 1]", lc.Loss)
	}
	return nil
}

// Line is a user-space router between links. Add links, then Start; Close
// stops it and closes every endpoint.
type Line struct {
	cfg   Config
	epoch time.Time // due times are nanoseconds since epoch

	// mu guards the fields below. Routes and links are fixed once started,
	// so the per-packet path reads them without locking.
	mu      sync.Mutex
	links   []*link
	routes  []route // longest prefix first
	started bool
	closed  bool

	wg    sync.WaitGroup
	stats lineCounters
	ipID  atomic.Uint32 // identification of the ICMP packets the router sends
}

type route struct {
	prefix netip.Prefix
	link   *link
}

// New returns a Line with no links.
func New(cfg Config) *Line {
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 8192
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	return &Line{cfg: cfg, epoch: time.Now()}
}

// AddLink attaches an endpoint and the IPv4 prefixes reachable through it.
// Links can only be added before Start. The Line owns ep from now on and
// closes it in Close, also when AddLink fails.
func (l *Line) AddLink(name string, ep Endpoint, prefixes []netip.Prefix, lc LinkConfig) error {
	fail := func(err error) error {
		ep.Close()
		return err
	}
	if err := lc.validate(); err != nil {
		return fail(fmt.Errorf("delayline: link %s: %w", name, err))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return fail(fmt.Errorf("delayline: add link %s: line already started", name))
	}
	if r := l.cfg.Router; r.IsValid() && !r.Is4() {
		return fail(fmt.Errorf("delayline: router address %s is not IPv4", r))
	}
	for _, o := range l.links {
		if o.name == name {
			return fail(fmt.Errorf("delayline: duplicate link name %s", name))
		}
	}
	for _, p := range prefixes {
		if !p.Addr().Is4() {
			return fail(fmt.Errorf("delayline: link %s: prefix %s is not IPv4", name, p))
		}
	}
	lk := newLink(l, name, ep, lc, l.cfg.Seed+uint64(len(l.links))*0x9e3779b97f4a7c15)
	l.links = append(l.links, lk)
	for _, p := range prefixes {
		l.routes = append(l.routes, route{prefix: p.Masked(), link: lk})
	}
	slices.SortStableFunc(l.routes, func(a, b route) int { return b.prefix.Bits() - a.prefix.Bits() })
	return nil
}

// SetLinkConfig changes a link's impairment; it applies to packets queued
// from now on.
func (l *Line) SetLinkConfig(name string, lc LinkConfig) error {
	if err := lc.validate(); err != nil {
		return fmt.Errorf("delayline: link %s: %w", name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lk := range l.links {
		if lk.name == name {
			lk.mu.Lock()
			lk.lc = lc
			lk.mu.Unlock()
			return nil
		}
	}
	return fmt.Errorf("delayline: no link %s", name)
}

// Start starts forwarding. It is a no-op after the first call.
func (l *Line) Start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.closed {
		return
	}
	l.started = true
	for _, lk := range l.links {
		l.wg.Add(2)
		go func() { defer l.wg.Done(); lk.readLoop() }()
		go func() { defer l.wg.Done(); lk.writeLoop() }()
	}
}

// Close stops all goroutines, drops queued packets and closes every
// endpoint. It is idempotent.
func (l *Line) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	links := l.links
	l.mu.Unlock()

	var errs []error
	for _, lk := range links {
		close(lk.done)
		if err := lk.ep.Close(); err != nil {
			errs = append(errs, fmt.Errorf("delayline: close link %s: %w", lk.name, err))
		}
	}
	l.wg.Wait()
	for _, lk := range links {
		lk.drain()
	}
	return errors.Join(errs...)
}

// now returns the line's clock: nanoseconds since New, monotonic.
func (l *Line) now() int64 { return int64(time.Since(l.epoch)) }

// lookup returns the link for an IPv4 destination, or nil.
func (l *Line) lookup(dst netip.Addr) *link {
	for _, r := range l.routes {
		if r.prefix.Contains(dst) {
			return r.link
		}
	}
	return nil
}

// forward routes one packet read from a link.
func (l *Line) forward(p packet) {
	b := p.bytes()
	ihl := headerLen(b)
	if ihl == 0 {
		l.stats.invalid.Add(1)
		p.release()
		return
	}
	if l.cfg.Router.IsValid() {
		ok, reply := hop(b, ihl, l.cfg.Router, uint16(l.ipID.Add(1)))
		if !ok {
			l.stats.expired.Add(1)
			p.release()
			if reply != nil {
				l.originate(reply)
			}
			return
		}
	}
	l.route(p)
}

// originate routes a packet the router itself sends.
func (l *Line) originate(b []byte) {
	l.stats.icmpSent.Add(1)
	l.route(newPacket(b))
}

func (l *Line) route(p packet) {
	b := p.bytes()
	dst := netip.AddrFrom4([4]byte(b[offDst : offDst+4]))
	out := l.lookup(dst)
	if out == nil {
		l.stats.noRoute.Add(1)
		p.release()
		return
	}
	out.enqueue(p)
}
