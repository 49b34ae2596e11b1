package rendezvous

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/testnet"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// fromSource returns a Dialer whose connections leave from the loopback
// address ip, so the server sees a distinct source.
func fromSource(ip string) *wsclient.Dialer {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = testnet.Dialer(ip).DialContext
	tr.MaxIdleConnsPerHost = -1 // every attempt is a new connection, as from a flooding client
	return &wsclient.Dialer{HTTPClient: &http.Client{Transport: tr}}
}

// syncBuffer is a log sink the server writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func captureLogs() (logging.LoggerFactory, *syncBuffer) {
	buf := &syncBuffer{}
	lf := logging.NewDefaultLoggerFactory()
	lf.Writer = buf
	lf.DefaultLogLevel = logging.LogLevelWarn
	return lf, buf
}

// The issue-8 attack: one client (127.0.0.2) opens 10,000 rooms as fast as
// it can and holds what it gets by answering pings. Another client
// (127.0.0.3) must still join and exchange messages at once. The server
// runs with its default limits.
func TestFloodFromOneSourceLeavesOthersServed(t *testing.T) {
	checkGoroutines(t)
	lf, logs := captureLogs()
	// Pings every second (not 15 s) so that holding means answering many.
	srv := &Server{LoggerFactory: lf, PingInterval: time.Second}
	url := startServer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const attempts = 10000
	attacker := fromSource("127.0.0.2")
	var (
		mu      sync.Mutex
		held    []*wsclient.Client
		refused = map[string]int{}
	)
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c, err := attacker.Dial(ctx, url, fmt.Sprintf("flood-%d", i))
				mu.Lock()
				switch {
				case err == nil:
					held = append(held, c) // its read loop answers every ping
				case errors.Is(err, signaling.ErrTooManyRooms):
					refused[signaling.CodeTooManyRooms]++
				case errors.Is(err, signaling.ErrTooManyConnections):
					refused[signaling.CodeTooManyConnections]++
				default:
					refused[err.Error()]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range attempts {
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	t.Logf("flood: %d attempts in %v: %d held, refused %v", attempts, elapsed.Round(time.Millisecond), len(held), refused)

	// A held connection whose client was too starved to answer a ping in
	// time (a loaded host, pings every second here) loses its room, and a
	// later attempt may take the freed place: the cap holds at every
	// moment, not over the whole flood.
	// (The drop is counted a moment after the room is freed: the count is
	// read once the flood is over, and may include drops after it.)
	dropped := int(srv.Stats().Dropped[ReasonPongTimeout])
	if len(held) < DefaultMaxRoomsPerSource || len(held) > DefaultMaxRoomsPerSource+dropped {
		t.Errorf("attacker got %d rooms with %d dropped for late pongs, want the per-source cap %d at any time", len(held), dropped, DefaultMaxRoomsPerSource)
	}
	if len(held)+refused[signaling.CodeTooManyRooms]+refused[signaling.CodeTooManyConnections] != attempts {
		t.Errorf("unexpected outcomes: %v", refused)
	}

	// The victim's pair, from another source, while the flood's rooms are held.
	victim := fromSource("127.0.0.3")
	a, err := victim.Dial(ctx, url, "victim-room")
	if err != nil {
		t.Fatalf("victim A refused: %v", err)
	}
	defer a.Close()
	b, err := victim.Dial(ctx, url, "victim-room")
	if err != nil {
		t.Fatalf("victim B refused: %v", err)
	}
	defer b.Close()
	for _, dir := range []struct{ from, to *wsclient.Client }{{a, b}, {b, a}} {
		want := signaling.Message{V: 1, Type: signaling.TypeCandidate, Candidate: testCand}
		if err := dir.from.Send(ctx, want); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, dir.to); !reflect.DeepEqual(got, want) {
			t.Fatalf("victim got %+v", got)
		}
	}

	// Held means held: after several ping rounds the attacker's rooms are
	// still there (but for those a starved client let go), and the
	// server counts and logs what it refused.
	st := srv.Stats()
	dropped = int(st.Dropped[ReasonPongTimeout])
	// The attacker's rooms (less any a starved client lost since) and the
	// victim's: never more than the cap and the victim's. Without late
	// pongs, exactly that.
	if st.Rooms < 1 || st.Rooms > DefaultMaxRoomsPerSource+1 || dropped == 0 && st.Rooms != DefaultMaxRoomsPerSource+1 {
		t.Errorf("Stats.Rooms = %d with %d of %d held dropped, want at most %d", st.Rooms, dropped, len(held), DefaultMaxRoomsPerSource+1)
	}
	got := st.Refused[ReasonTooManyRoomsPerSource] + st.Refused[ReasonTooManyConnsPerSource]
	if got != uint64(attempts-len(held)) || st.Joins != uint64(len(held)+2) {
		t.Errorf("Stats %+v: want %d refusals and %d joins", st, attempts-len(held), len(held)+2)
	}
	// One log line per reason per interval, not one per refusal. The
	// summaries come with a timer, so count the intervals up to now.
	lines := strings.Count(logs.String(), "refused")
	if maxLines := 2 * (1 + int(time.Since(start)/DefaultRefusalLogInterval)); lines == 0 || lines > maxLines {
		t.Errorf("%d refusal log lines for %d refusals, want 1..%d:\n%s", lines, got, maxLines, logs.String())
	}
}

// A flood of connections that never join is capped per source, and each
// is cut at the join deadline.
func TestConnectionFloodAndJoinDeadline(t *testing.T) {
	checkGoroutines(t)
	// The join deadline must not pass while the flood is still being
	// counted, however slow a loaded host makes the hundred dials.
	srv := &Server{MaxConnsPerSource: 8, JoinTimeout: 3 * time.Second}
	url := startServer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	attacker := fromSource("127.0.0.2")
	var held []*websocket.Conn
	ends := make(chan error, 100)
	refusedN := 0
	for range 100 {
		ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: attacker.HTTPClient})
		if err != nil {
			refusedN++
			continue
		}
		go func() { // reading answers pings and sees the close
			_, _, err := ws.Read(ctx)
			ends <- err
		}()
		held = append(held, ws)
	}
	if len(held) != 8 || refusedN != 92 {
		t.Fatalf("held %d, refused %d; want 8 and 92", len(held), refusedN)
	}
	// The refusal names itself to a client that speaks the protocol.
	if _, err := attacker.Dial(ctx, url, "r"); !errors.Is(err, signaling.ErrTooManyConnections) || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Fatalf("Dial over the cap: %v", err)
	}
	// Another source is not affected.
	c, err := fromSource("127.0.0.3").Dial(ctx, url, "other")
	if err != nil {
		t.Fatalf("other source: %v", err)
	}
	c.Close()
	// Each held connection is closed at the join deadline, freeing the slots.
	for range held {
		err := <-ends
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Reason != signaling.CodeJoinTimeout {
			t.Fatalf("unjoined connection: %v, want close %q", err, signaling.CodeJoinTimeout)
		}
	}
	for _, ws := range held {
		ws.CloseNow()
	}
	c, err = attacker.Dial(ctx, url, "r2")
	if err != nil {
		t.Fatalf("attacker's source after the deadline: %v", err)
	}
	c.Close()
	if st := srv.Stats(); st.Refused[ReasonJoinTimeout] != 8 || st.Refused[ReasonTooManyConnsPerSource] != 93 {
		t.Fatalf("Stats.Refused = %v", st.Refused)
	}
}

func TestGlobalConnectionCap(t *testing.T) {
	checkGoroutines(t)
	srv := &Server{MaxConns: 2}
	url := startServer(t, srv)
	dial(t, url, "a")
	dial(t, url, "a")
	_, err := fromSource("127.0.0.4").Dial(testCtx(t), url, "b")
	if !errors.Is(err, signaling.ErrTooManyConnections) || errors.Is(err, errPerSource) {
		t.Fatalf("third connection: %v", err)
	}
	if st := srv.Stats(); st.Conns != 2 || st.Refused[ReasonTooManyConns] != 1 {
		t.Fatalf("Stats %+v", st)
	}
}

func TestTokenRequired(t *testing.T) {
	checkGoroutines(t)
	srv := &Server{TokenKey: testTokenKey}
	url := startServer(t, srv)
	ctx := testCtx(t)
	if _, err := wsclient.Dial(ctx, url, "r"); !errors.Is(err, signaling.ErrUnauthorized) || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("without a token: %v", err)
	}
	expired, _ := MintToken(testTokenKey, Token{Expires: time.Now().Add(-time.Minute)})
	d := &wsclient.Dialer{Token: expired}
	if _, err := d.Dial(ctx, url, "r"); !errors.Is(err, signaling.ErrUnauthorized) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	forged, _ := MintToken([]byte("not-the-server-secret!"), Token{Expires: time.Now().Add(time.Hour)})
	d.Token = forged
	if _, err := d.Dial(ctx, url, "r"); !errors.Is(err, signaling.ErrUnauthorized) {
		t.Fatalf("forged token: %v", err)
	}
	good, _ := MintToken(testTokenKey, Token{Expires: time.Now().Add(time.Hour), Subject: "alice"})
	d.Token = good
	a, err := d.Dial(ctx, url, "r")
	if err != nil {
		t.Fatalf("valid token: %v", err)
	}
	defer a.Close()
	if st := srv.Stats(); st.Refused[ReasonUnauthorized] != 3 || st.Joins != 1 {
		t.Fatalf("Stats %+v", st)
	}
}

func TestIdleRoomExpires(t *testing.T) {
	checkGoroutines(t)
	srv := &Server{RoomIdleTimeout: 300 * time.Millisecond, PingInterval: 50 * time.Millisecond}
	url := startServer(t, srv)
	a := dial(t, url, "lonely")
	_, err := a.Recv(testCtx(t))
	if !errors.Is(err, signaling.ErrRoomExpired) {
		t.Fatalf("lone member: %v, want ErrRoomExpired", err)
	}
	if st := srv.Stats(); st.Dropped[ReasonRoomExpired] != 1 {
		t.Fatalf("Stats %+v", st)
	}
}

func TestSourceOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5000":              "192.0.2.1",
		"[::ffff:192.0.2.1]:5000":     "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:5000": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ff::1]:1":      "2001:db8:1:2::/64",
		"not an address":              "not an address",
	} {
		if got := sourceOf(in); got != want {
			t.Errorf("sourceOf(%q) = %q, want %q", in, got, want)
		}
	}
}
