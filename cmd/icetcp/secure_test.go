package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icetcp/icetcp/secure"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/rendezvous"
	"github.com/icetcp/icetcp/signaling/signalingtest"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// serveInfo is what `icetcp serve` printed about itself.
type serveInfo struct {
	url, stun, metrics string
}

// startServeWith runs `icetcp serve` on loopback with extra flags. It
// announces no relay (serve would announce its own, with the secret it
// makes up): these tests are about connect without one; the announced
// relays have tests of their own (serve_cluster_test.go).
func startServeWith(t *testing.T, ctx context.Context, extra ...string) serveInfo {
	t.Helper()
	args := append([]string{"serve", "--signal-addr", "127.0.0.1:0", "--stun-addr", "127.0.0.1:0", "--no-announce"}, extra...)
	lines := startBanner(t, icetcp(ctx, args...))
	m := regexp.MustCompile(`signaling on (wss?://\S+), STUN (?:and TURN )?over TCP on (\S+)`).FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("unexpected serve banner %q", lines)
	}
	info := serveInfo{url: m[1], stun: m[2]}
	for _, line := range lines {
		if mm := regexp.MustCompile(`metrics on (\S+)`).FindStringSubmatch(line); mm != nil {
			info.metrics = mm[1]
		}
	}
	return info
}

// startPeer runs `icetcp connect` with the given stdin and flags, on
// loopback host candidates, with --json; stdout goes to outPath.
func startPeer(t *testing.T, ctx context.Context, srv serveInfo, stdin io.Reader, outPath string, flags ...string) *peerRun {
	t.Helper()
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	p := &peerRun{out: out}
	args := append([]string{"connect", "--signal", srv.url, "--addrs", "127.0.0.1", "--stun", srv.stun, "--json"}, flags...)
	p.cmd = icetcp(ctx, args...)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = stdin, out, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// lastEvent returns the last JSON event of a finished connect with the
// given name, or nil.
func lastEvent(t *testing.T, p *peerRun, name string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, ev := range events(t, p.stderr.String()) {
		if ev["event"] == name {
			found = ev
		}
	}
	return found
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestSecretConnectCarriesDataBothWays(t *testing.T) {
	const size = 8 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServeWith(t, ctx)
	secret := secure.NewSecret().String()
	dir := t.TempDir()
	sumA := randomFile(t, filepath.Join(dir, "a.in"), size)
	sumB := randomFile(t, filepath.Join(dir, "b.in"), size)
	inA, _ := os.Open(filepath.Join(dir, "a.in"))
	inB, _ := os.Open(filepath.Join(dir, "b.in"))
	defer inA.Close()
	defer inB.Close()
	a := startPeer(t, ctx, srv, inA, filepath.Join(dir, "a.out"), "--secret", secret)
	b := startPeer(t, ctx, srv, inB, filepath.Join(dir, "b.out"), "--secret", secret)
	errA, errB := a.cmd.Wait(), b.cmd.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("connect exited: A %v\n%s\nB %v\n%s", errA, a.stderr.String(), errB, b.stderr.String())
	}
	if fileSum(t, filepath.Join(dir, "a.out")) != sumB || fileSum(t, filepath.Join(dir, "b.out")) != sumA {
		t.Fatal("outputs differ from the peer's inputs")
	}
	roles := map[any]bool{}
	for _, p := range []*peerRun{a, b} {
		sec, done := lastEvent(t, p, "secured"), lastEvent(t, p, "done")
		if sec == nil || done == nil || done["received"] != float64(size) || lastEvent(t, p, "warning") != nil {
			t.Fatalf("events: %s", p.stderr.String())
		}
		roles[sec["role"]] = true
		// The session's one path carried both streams and the handshake.
		paths, _ := done["paths"].([]any)
		if len(paths) != 1 || paths[0].(map[string]any)["path"] != "direct" || paths[0].(map[string]any)["bytes"].(float64) < 2*float64(size) {
			t.Fatalf("done paths %v: want the one direct path with both streams", done["paths"])
		}
	}
	if !roles["initiator"] || !roles["responder"] {
		t.Fatalf("roles %v: want one initiator and one responder", roles)
	}
}

// Issue 14, finding 8: a squatter who learned the room of a secret (the
// rendezvous, or anyone watching ws://) and joined it first was paired
// with the first real peer, which failed its handshake 15 s later, while
// the second waited in "gathering" forever. Here a squatter (connect
// --room with the secret's room) joins first and another keeps trying to
// join, raw, all along: neither gets in, the real pair connects intact,
// both ways, within one handshake timeout of the squatter, and the
// squatter gets no byte.
func TestSquatterInSecretRoom(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServeWith(t, ctx, "--metrics-addr", "127.0.0.1:0")
	s := secure.NewSecret()
	room := secure.RoomName(s)
	dir := t.TempDir()
	dataA, dataB := make([]byte, 1<<20), make([]byte, 1<<20)
	rand.Read(dataA)
	rand.Read(dataB)

	squatter := startPeer(t, ctx, srv, bytes.NewReader([]byte("squatter speaking\n")), filepath.Join(dir, "squatter.out"), "--room", room)
	joinedOrRefused := func() int {
		body := scrape(t, ctx, srv.metrics)
		n := 0
		for _, series := range []string{"icetcp_signal_joins_total", `icetcp_signal_refusals_total{reason="room-proof"}`} {
			if m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\d+)`).FindStringSubmatch(body); m != nil {
				v, _ := strconv.Atoi(m[1])
				n += v
			}
		}
		return n
	}
	for joinedOrRefused() < 1 { // the squatter's join has been decided
		select {
		case <-ctx.Done():
			t.Fatal("the squatter's join never reached the rendezvous")
		case <-time.After(20 * time.Millisecond):
		}
	}
	squatted := time.Now()
	// A second squatter retries all along, as one racing the real pair.
	stopRacing := make(chan struct{})
	raced := make(chan int, 1)
	go func() {
		n := 0
		defer func() { raced <- n }()
		for {
			select {
			case <-stopRacing:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if c, err := wsclient.Dial(ctx, srv.url, room); err == nil {
				c.Close()
				t.Errorf("a raw squatter joined %s", room)
				return
			} else if !errors.Is(err, signaling.ErrRoomProof) {
				t.Errorf("a raw squatter: %v, want ErrRoomProof", err)
				return
			}
			n++
		}
	}()

	a := startPeer(t, ctx, srv, bytes.NewReader(dataA), filepath.Join(dir, "a.out"), "--secret", s.String())
	b := startPeer(t, ctx, srv, bytes.NewReader(dataB), filepath.Join(dir, "b.out"), "--secret", s.String())
	errA, errB := a.cmd.Wait(), b.cmd.Wait()
	took := time.Since(squatted)
	close(stopRacing)
	attempts := <-raced
	if errA != nil || errB != nil {
		t.Fatalf("real pair: A %v\n%s\nB %v\n%s", errA, a.stderr.String(), errB, b.stderr.String())
	}
	if fileSum(t, filepath.Join(dir, "b.out")) != sha256.Sum256(dataA) || fileSum(t, filepath.Join(dir, "a.out")) != sha256.Sum256(dataB) {
		t.Fatal("real pair: what arrived differs from what was sent")
	}
	t.Logf("the real pair connected and finished %v after the squatter; %d raw joins refused meanwhile", took.Round(time.Millisecond), attempts)
	if took > handshakeTimeout {
		t.Fatalf("the real pair took %v after the squatter, more than one handshake timeout (%v)", took, handshakeTimeout)
	}
	for _, p := range []*peerRun{a, b} {
		if w := lastEvent(t, p, "warning"); w != nil {
			t.Fatalf("a real peer warned: %v", w)
		}
	}
	errS := squatter.cmd.Wait()
	failed := lastEvent(t, squatter, "failed")
	if exitCode(errS) == 0 || failed == nil || !strings.Contains(failed["reason"].(string), "room proof") {
		t.Fatalf("the squatter: exit %v, want refused with a room proof error:\n%s", errS, squatter.stderr.String())
	}
	got, _ := os.ReadFile(filepath.Join(dir, "squatter.out"))
	if len(got) != 0 {
		t.Fatalf("the squatter read %d bytes", len(got))
	}
}

// With --secret the attacker cannot even find the room: whatever names it
// guesses and holds, the pair connects undisturbed and the attacker reads
// nothing.
func TestSecretRoomCannotBeFound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServeWith(t, ctx, "--metrics-addr", "127.0.0.1:0")
	s := secure.NewSecret()
	dir := t.TempDir()
	guesses := []string{"demo", "room", strings.ReplaceAll(s.String(), "-", "")}
	var attackers []*peerRun
	for i, g := range guesses {
		attackers = append(attackers, startPeer(t, ctx, srv, bytes.NewReader([]byte("x")), filepath.Join(dir, fmt.Sprint("attacker", i)), "--room", g))
	}
	waitMetric(t, ctx, srv.metrics, "icetcp_signal_joins_total", len(guesses))

	data := make([]byte, 1<<20)
	rand.Read(data)
	a := startPeer(t, ctx, srv, bytes.NewReader(data), filepath.Join(dir, "a.out"), "--secret", s.String())
	b := startPeer(t, ctx, srv, bytes.NewReader(nil), filepath.Join(dir, "b.out"), "--secret", s.String())
	if errA, errB := a.cmd.Wait(), b.cmd.Wait(); errA != nil || errB != nil {
		t.Fatalf("pair: A %v\n%s\nB %v\n%s", errA, a.stderr.String(), errB, b.stderr.String())
	}
	if fileSum(t, filepath.Join(dir, "b.out")) != sha256.Sum256(data) {
		t.Fatal("data differs")
	}
	for i, p := range attackers {
		if p.cmd.ProcessState != nil {
			t.Fatalf("attacker %d ended: it met someone:\n%s", i, p.stderr.String())
		}
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if out, _ := os.ReadFile(filepath.Join(dir, fmt.Sprint("attacker", i))); len(out) != 0 {
			t.Fatalf("attacker %d read %q", i, out)
		}
	}
}

// Issue 8, silent truncation: a receive-only connect whose sender is
// SIGKILLed mid-transfer must fail and say how much arrived.
func TestSIGKILLedSenderIsReportedAsTruncation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv := startServeWith(t, ctx)
	secret := secure.NewSecret().String()
	dir := t.TempDir()
	pr, pw := osPipe(t)
	go func() { // an endless sender: the transfer is always mid-way
		buf := make([]byte, 64<<10)
		for {
			rand.Read(buf)
			if _, err := pw.Write(buf); err != nil {
				return
			}
		}
	}()
	sender := startPeer(t, ctx, srv, pr, filepath.Join(dir, "s.out"), "--secret", secret)
	recvOut := filepath.Join(dir, "r.out")
	receiver := startPeer(t, ctx, srv, bytes.NewReader(nil), recvOut, "--secret", secret)
	waitFileSize(t, ctx, recvOut, 4<<20)
	if err := sender.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sender.cmd.Wait()
	pw.Close()
	err := receiver.cmd.Wait()
	if exitCode(err) == 0 {
		t.Fatalf("receiver exited 0 after its sender was killed:\n%s", receiver.stderr.String())
	}
	got, _ := os.Stat(recvOut)
	failed := lastEvent(t, receiver, "failed")
	want := fmt.Sprintf("peer vanished after %d bytes", got.Size())
	if failed == nil || !strings.Contains(failed["reason"].(string), want) || failed["received"] != float64(got.Size()) {
		t.Fatalf("want a failed event saying %q:\n%s", want, receiver.stderr.String())
	}
}

func TestWSSWithCustomCA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ca, err := signalingtest.NewCA("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"ca.pem": ca.CertPEM, "cert.pem": ca.ServerCertPEM, "key.pem": ca.ServerKeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServeWith(t, ctx, "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	if !strings.HasPrefix(srv.url, "wss://") {
		t.Fatalf("serve with TLS announces %s", srv.url)
	}
	// Without --ca the self-signed rendezvous is refused, clearly.
	lone := startPeer(t, ctx, srv, bytes.NewReader(nil), filepath.Join(dir, "lone.out"), "--secret", secure.NewSecret().String())
	if exitCode(lone.cmd.Wait()) == 0 {
		t.Fatal("connected to an untrusted wss:// server")
	}
	failed := lastEvent(t, lone, "failed")
	if failed == nil || !strings.Contains(failed["reason"].(string), "certificate") || !strings.Contains(failed["reason"].(string), "--ca") {
		t.Fatalf("want a certificate error that points at --ca:\n%s", lone.stderr.String())
	}
	// With --ca the pair connects.
	secret := secure.NewSecret().String()
	a := startPeer(t, ctx, srv, bytes.NewReader([]byte("over wss")), filepath.Join(dir, "a.out"), "--secret", secret, "--ca", filepath.Join(dir, "ca.pem"))
	b := startPeer(t, ctx, srv, bytes.NewReader(nil), filepath.Join(dir, "b.out"), "--secret", secret, "--ca", filepath.Join(dir, "ca.pem"))
	if errA, errB := a.cmd.Wait(), b.cmd.Wait(); errA != nil || errB != nil {
		t.Fatalf("A %v\n%s\nB %v\n%s", errA, a.stderr.String(), errB, b.stderr.String())
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "b.out")); string(got) != "over wss" {
		t.Fatalf("B got %q", got)
	}
}

func TestTokenRequiredAndCounted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const key = "a-server-secret-of-enough-bytes"
	srv := startServeWith(t, ctx, "--token-secret", key, "--metrics-addr", "127.0.0.1:0")
	dir := t.TempDir()
	secret := secure.NewSecret().String()

	nobody := startPeer(t, ctx, srv, bytes.NewReader(nil), filepath.Join(dir, "n.out"), "--secret", secret)
	if exitCode(nobody.cmd.Wait()) == 0 {
		t.Fatal("joined without a token")
	}
	if f := lastEvent(t, nobody, "failed"); f == nil || !strings.Contains(f["reason"].(string), "unauthorized") || !strings.Contains(f["reason"].(string), "--token") {
		t.Fatalf("want unauthorized:\n%s", nobody.stderr.String())
	}
	expired, _ := rendezvous.MintToken([]byte(key), rendezvous.Token{Expires: time.Now().Add(-time.Hour)})
	late := startPeer(t, ctx, srv, bytes.NewReader(nil), filepath.Join(dir, "l.out"), "--secret", secret, "--token", expired)
	if exitCode(late.cmd.Wait()) == 0 || !strings.Contains(late.stderr.String(), "expired") {
		t.Fatalf("expired token:\n%s", late.stderr.String())
	}

	var tok bytes.Buffer
	mint := icetcp(ctx, "token", "--token-secret", key, "--ttl", "1h", "--subject", "alice")
	mint.Stdout = &tok
	if err := mint.Run(); err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(tok.String())
	a := startPeer(t, ctx, srv, bytes.NewReader([]byte("with a token")), filepath.Join(dir, "a.out"), "--secret", secret, "--token", token)
	b := startPeer(t, ctx, srv, bytes.NewReader(nil), filepath.Join(dir, "b.out"), "--secret", secret, "--token", token)
	if errA, errB := a.cmd.Wait(), b.cmd.Wait(); errA != nil || errB != nil {
		t.Fatalf("A %v\n%s\nB %v\n%s", errA, a.stderr.String(), errB, b.stderr.String())
	}
	body := scrape(t, ctx, srv.metrics)
	for _, want := range []string{`icetcp_signal_refusals_total{reason="unauthorized"} 2`, "icetcp_signal_joins_total 2", "icetcp_signal_rooms "} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestRoomWithoutSecretWarnsAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"connect", "--signal", "ws://127.0.0.1:1", "--room", "r", "--addrs", "127.0.0.1", "--json", "--timeout", "5s"}, nil, &out, &errb)
	if code == 0 {
		t.Fatal("connect to nothing exited 0")
	}
	first := events(t, errb.String())[0]
	if first["event"] != "warning" || !strings.Contains(first["message"].(string), "anyone who knows the room name") {
		t.Fatalf("first event %v", first)
	}
	for _, args := range [][]string{
		{"connect", "--signal", "ws://x", "--secret", "password"},
		{"connect", "--signal", "ws://x", "--secret", secure.NewSecret().String(), "--room", "r"},
		{"connect", "--signal", "ws://x"},
		{"token", "--token-secret", "short"},
	} {
		errb.Reset()
		if code := run(args, nil, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	out.Reset()
	if code := run([]string{"secret"}, nil, &out, &errb); code != 0 {
		t.Fatalf("secret: exit %d", code)
	}
	if _, err := secure.ParseSecret(strings.TrimSpace(out.String())); err != nil {
		t.Fatalf("icetcp secret printed %q: %v", out.String(), err)
	}
}

// osPipe is a pipe whose read end a child process gets as its stdin
// directly (no copying goroutine that could outlive the child).
func osPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// waitFileSize polls a file another process writes until it holds at least
// n bytes.
func waitFileSize(t *testing.T, ctx context.Context, path string, n int64) {
	t.Helper()
	for {
		if st, err := os.Stat(path); err == nil && st.Size() >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached %d bytes", path, n)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitMetric polls the serve process's metrics until a series reaches v.
func waitMetric(t *testing.T, ctx context.Context, url, series string, v int) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\d+)`)
	for {
		if m := re.FindStringSubmatch(scrape(t, ctx, url)); m != nil {
			if got, _ := strconv.Atoi(m[1]); got >= v {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never reached %d", series, v)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func scrape(t *testing.T, ctx context.Context, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
