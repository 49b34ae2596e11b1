package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/logging"
	"go.uber.org/goleak"

	"github.com/icetcp/icetcp/agent"
)

func TestMain(m *testing.M) {
	if ServeChild() {
		return
	}
	goleak.VerifyTestMain(m)
}

// loopback is where every test agent lives.
var loopback = netip.MustParseAddr("127.0.0.1")

// icetcpSide is an icetcp agent for a test, with its log kept for failures.
type icetcpSide struct {
	a    *agent.Agent
	log  *logBuffer
	conn *agent.Conn
}

func newAgent(t *testing.T, cfg agent.Config) *icetcpSide {
	t.Helper()
	s := &icetcpSide{log: &logBuffer{}}
	if cfg.Addrs == nil {
		cfg.Addrs = []netip.Addr{loopback}
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = s.log
	lf.DefaultLogLevel = logging.LogLevelDebug
	cfg.LoggerFactory = lf
	user := cfg.OnEvent
	cfg.OnEvent = func(e agent.Event) {
		switch e.Type {
		case agent.EventState:
			s.log.printf("icetcp state %s %v", e.State, errOrEmpty(e.Err))
		case agent.EventSelected:
			s.log.printf("icetcp selected %s -> %s", e.Pair.Local.Marshal(), e.Pair.Remote.Marshal())
		case agent.EventWarning:
			s.log.printf("icetcp warning %v", e.Err)
		}
		if user != nil {
			user(e)
		}
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.a = a
	t.Cleanup(func() {
		a.Close()
		if t.Failed() {
			t.Logf("icetcp log:\n%s", s.log.String())
		}
	})
	return s
}

func errOrEmpty(err error) any {
	if err == nil {
		return ""
	}
	return err
}

// connect runs the agent against p over an in-memory channel.
func (s *icetcpSide) connect(t *testing.T, p *Peer) *agent.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := s.a.Connect(ctx, p.Channel())
	if err != nil {
		t.Fatalf("icetcp Connect with %s (controlling=%v): %v", p.Kind(), p.Controlling(), err)
	}
	s.conn = conn
	return conn
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return fmt.Sprintf("%x (%d bytes)", h[:8], len(b))
}

// exchange sends n random bytes each way between conn and p at once, with
// writes of writeSize bytes on the icetcp side (0: one Write), and compares
// both directions by SHA-256. A window > 0 keeps icetcp at most that many
// bytes ahead of what the peer has read: pion/ice v2 buffers at most 1 MB
// that its application has not read and drops what comes on top, even
// over TCP.
func exchange(t *testing.T, conn *agent.Conn, p *Peer, n, writeSize, window int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	toPeer, fromPeer := randomBytes(t, n), randomBytes(t, n)
	if err := p.Send(fromPeer); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		if writeSize == 0 {
			_, werr = conn.Write(toPeer)
			return
		}
		for b := toPeer; len(b) > 0; {
			if sent := n - len(b); window > 0 && sent > window {
				if _, err := p.WaitReceived(ctx, sent-window); err != nil {
					werr = err
					return
				}
			}
			k := min(writeSize, len(b))
			if _, werr = conn.Write(b[:k]); werr != nil {
				return
			}
			b = b[k:]
		}
	}()
	got := make([]byte, n)
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	k, rerr := io.ReadFull(conn, got)
	peerGot, perr := p.WaitReceived(ctx, n)
	wg.Wait()
	if werr != nil {
		t.Errorf("icetcp Write: %v", werr)
	}
	if rerr != nil {
		t.Errorf("icetcp read %d of %d bytes from %s: %v", k, n, p.Kind(), rerr)
	} else if !bytes.Equal(got, fromPeer) {
		t.Errorf("icetcp received %s, %s sent %s", sum(got), p.Kind(), sum(fromPeer))
	}
	if perr != nil {
		t.Errorf("%s: %v", p.Kind(), perr)
	} else if !bytes.Equal(peerGot[:n], toPeer) || len(peerGot) != n {
		t.Errorf("%s received %s, icetcp sent %s", p.Kind(), sum(peerGot), sum(toPeer))
	}
}
