package interop

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/framing"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// libnice 0.1.21 takes a STUN frame that reaches it right behind an
// application frame it has not read yet for application data (see
// agent/stdpeer.go). These tests make that happen on purpose and check that
// icetcp never puts a STUN frame there.

// TestLibniceAnswerBeforeData: icetcp controlling, libnice controlled,
// regular nomination. libnice answers our nomination and only then sends
// its own (triggered) check on the pair; the application writes as soon as
// Connect returns. In front of libnice, a proxy holds our bytes from the
// first application frame on for holdFor, then delivers them in one write,
// as a host that does not schedule libnice for that long would: whatever
// icetcp sent meanwhile lands in libnice's read behind our data. Our
// answer to libnice's check must not be among it: libnice would hand its
// 64 bytes to the application and fail the pair (the CI flake of
// TestLabThirdPartyPublic/libnice: 4,160 bytes for 4,096).
func TestLibniceAnswerBeforeData(t *testing.T) {
	for i := range 3 {
		p := StartLibnice(t, Options{Controlling: false, Debug: true})
		px := newHoldingProxy(t, 300*time.Millisecond)
		s := newAgent(t, agent.Config{Role: agent.RoleControlling})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		conn, err := s.a.Connect(ctx, throughProxy(t, p, px))
		cancel()
		if err != nil {
			t.Fatalf("trial %d: icetcp Connect with libnice through the proxy: %v", i, err)
		}
		want := randomBytes(t, 4096)
		if _, err := conn.Write(want); err != nil {
			t.Fatal(err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 15*time.Second)
		if _, err := p.WaitReceived(ctx, len(want)); err != nil {
			cancel()
			t.Fatalf("trial %d: %v", i, err)
		}
		// libnice goes READY once its own check is answered; by then all
		// it will ever hand its application from us is there.
		err = p.WaitState(ctx, StateConnected)
		cancel()
		if err != nil {
			t.Fatalf("trial %d: libnice not ready: %v", i, err)
		}
		if got := p.Received(); !bytes.Equal(got, want) {
			t.Fatalf("trial %d: libnice received %s, icetcp sent %s", i, sum(got), sum(want))
		}
		if px.holds() == 0 {
			t.Fatalf("trial %d: the proxy never held our data: the test tested nothing", i)
		}
		p.Stop()
		s.a.Close()
	}
}

// TestLibniceLongTransfer sends to libnice for many consent intervals with
// the pipe full (libnice reads slower than icetcp writes, so each of its
// reads holds many of our frames): no consent check of ours may land
// among them, and the transfer must not die for lack of answers.
func TestLibniceLongTransfer(t *testing.T) {
	p := StartLibnice(t, Options{Controlling: false})
	s := newAgent(t, agent.Config{ConsentInterval: 50 * time.Millisecond, ConsentTimeout: 5 * time.Second})
	conn := s.connect(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.WaitState(ctx, StateConnected); err != nil {
		t.Fatal(err)
	}
	const chunk, chunks = 64 << 10, 160 // 10 MiB: 1-3 s here, 20-60 consent intervals
	want := randomBytes(t, chunk*chunks)
	start := time.Now()
	for i := range chunks {
		if _, err := conn.Write(want[i*chunk : (i+1)*chunk]); err != nil {
			t.Fatalf("after %d bytes (%v): %v", i*chunk, time.Since(start), err)
		}
	}
	if _, err := p.WaitReceived(ctx, len(want)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// What came after the last byte would be there by now: libnice
	// delivered the last frame, so frames behind it came with it.
	if got := p.Received(); !bytes.Equal(got, want) {
		t.Fatalf("libnice received %s, icetcp sent %s in %v", sum(got), sum(want), took)
	}
	if took < 200*time.Millisecond {
		t.Logf("the transfer took only %v: few consent intervals passed", took)
	}
	if st := s.a.Stats().State; st != agent.StateConnected {
		t.Fatalf("icetcp %v after the transfer", st)
	}
}

// holdingProxy forwards TCP connections to one target. From the first
// application frame (RFC 4571, not STUN) it sees from the client, it holds
// the client's bytes for holdFor, then writes all it holds at once; STUN
// frames with nothing held pass at once. The target's bytes pass at once.
type holdingProxy struct {
	ln      net.Listener
	holdFor time.Duration
	target  netip.AddrPort
	wg      sync.WaitGroup

	mu    sync.Mutex // guards following
	held  int
	conns []net.Conn
}

func newHoldingProxy(t *testing.T, holdFor time.Duration) *holdingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	px := &holdingProxy{ln: ln, holdFor: holdFor, conns: []net.Conn{}}
	t.Cleanup(px.close)
	return px
}

// addr is where clients connect.
func (px *holdingProxy) addr() netip.AddrPort { return ln2ap(px.ln) }

func ln2ap(ln net.Listener) netip.AddrPort {
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// start forwards to target from now on.
func (px *holdingProxy) start(target netip.AddrPort) {
	px.target = target
	px.wg.Add(1)
	go func() {
		defer px.wg.Done()
		for {
			c, err := px.ln.Accept()
			if err != nil {
				return
			}
			px.wg.Add(1)
			go func() {
				defer px.wg.Done()
				px.serve(c)
			}()
		}
	}()
}

func (px *holdingProxy) track(c net.Conn) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.conns == nil {
		return false // closed
	}
	px.conns = append(px.conns, c)
	return true
}

func (px *holdingProxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", px.target.String())
	if err != nil || !px.track(client) || !px.track(server) {
		client.Close()
		if server != nil {
			server.Close()
		}
		return
	}
	done := make(chan struct{})
	go func() {
		io.Copy(client, server)
		client.Close()
		close(done)
	}()
	px.hold(client, server)
	server.Close()
	<-done
}

// hold copies client frames to server, holding them from an application
// frame on for holdFor.
func (px *holdingProxy) hold(client, server net.Conn) {
	frames := make(chan []byte, 64)
	go func() {
		defer close(frames)
		fr := framing.NewReader(client)
		for {
			f, err := fr.Next()
			if err != nil {
				return
			}
			b, _ := framing.AppendFrame(nil, f) // a copy: f is the reader's
			frames <- b
		}
	}()
	var held []byte
	var flush <-chan time.Time
	for {
		select {
		case b, ok := <-frames:
			if !ok {
				server.Write(held)
				return
			}
			switch {
			case flush != nil:
				held = append(held, b...)
			case framing.IsSTUN(b[2:]):
				if _, err := server.Write(b); err != nil {
					return
				}
			default:
				held = append(held, b...)
				flush = time.After(px.holdFor)
				px.mu.Lock()
				px.held++
				px.mu.Unlock()
			}
		case <-flush:
			if _, err := server.Write(held); err != nil {
				return
			}
			held, flush = nil, nil
		}
	}
}

func (px *holdingProxy) holds() int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return px.held
}

func (px *holdingProxy) close() {
	px.ln.Close()
	px.mu.Lock()
	conns := px.conns
	px.conns = nil
	px.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	px.wg.Wait()
}

// throughProxy returns the signaling channel to p for an icetcp agent with
// p's only path through px: p's passive candidate becomes px's address
// (px forwards to it), p's other candidates and our passive and S-O ones
// are not passed on, so the agent's active candidate through px is the only
// pair.
func throughProxy(t *testing.T, p *Peer, px *holdingProxy) signaling.Channel {
	agentEnd := p.Channel()
	mine, theirs := signalingtest.NewPair()
	var once sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); mine.Close(); agentEnd.Close(); wg.Wait() })
	wg.Add(2)
	go func() { // from p to the agent
		defer wg.Done()
		for {
			m, err := agentEnd.Recv(ctx)
			if err != nil {
				mine.Close()
				return
			}
			if m.Type == signaling.TypeCandidate {
				c, err := candidate.Parse(m.Candidate)
				if err != nil || c.TCPType != candidate.Passive || c.Type != candidate.Host {
					continue
				}
				once.Do(func() { px.start(c.Addr) })
				if px.target != c.Addr {
					continue
				}
				c.Addr = px.addr()
				m.Candidate = c.Marshal()
			}
			if mine.Send(ctx, m) != nil {
				return
			}
		}
	}()
	go func() { // from the agent to p
		defer wg.Done()
		for {
			m, err := mine.Recv(ctx)
			if err != nil {
				agentEnd.Close()
				return
			}
			if m.Type == signaling.TypeCandidate {
				if c, err := candidate.Parse(m.Candidate); err != nil || c.TCPType != candidate.Active {
					continue
				}
			}
			if agentEnd.Send(ctx, m) != nil {
				return
			}
		}
	}()
	return theirs
}
