package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/natsd"
	"github.com/icetcp/icetcp/secure"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// node is an `icetcp serve` process of a test, with what it printed.
type node struct {
	url, stun, metrics string
	cmd                *exec.Cmd
	mu                 sync.Mutex
	out                strings.Builder // everything it printed to stderr
	printed            chan struct{}   // closed (and replaced) at every line; under mu
	exited             chan struct{}
}

// startNode runs `icetcp serve` on loopback with args and waits for
// "ready"; what it prints after is kept (node.log).
func startNode(t *testing.T, ctx context.Context, args ...string) *node {
	t.Helper()
	cmd := icetcp(ctx, append([]string{"serve", "--signal-addr", "127.0.0.1:0", "--stun-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, printed: make(chan struct{}), exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(n.exited)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			n.out.WriteString(line + "\n")
			close(n.printed)
			n.printed = make(chan struct{})
			n.mu.Unlock()
			if m := regexp.MustCompile(`signaling on (wss?://\S+), STUN and TURN over TCP on ([^\s"]+)`).FindStringSubmatch(line); m != nil {
				n.url, n.stun = m[1], m[2]
			}
			if m := regexp.MustCompile(`metrics on (http://[^\s"]+)`).FindStringSubmatch(line); m != nil {
				n.metrics = strings.TrimSuffix(m[1], "/metrics")
			}
			if strings.Contains(line, "serve: ready") || strings.Contains(line, `"msg":"ready"`) {
				once.Do(func() { close(ready) })
			}
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-n.exited
	})
	select {
	case <-ready:
	case <-n.exited:
		t.Fatalf("serve %q exited: %s", args, n.log())
	case <-ctx.Done():
		t.Fatalf("serve not ready: %s", n.log())
	}
	return n
}

func (n *node) log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.out.String()
}

// get fetches a path of the node's metrics listener.
func (n *node) get(t *testing.T, ctx context.Context, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", n.metrics+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, b.String()
}

// TestServeClusterAnnouncedRelays: two serve nodes of one cluster (a real
// NATS server), each with the embedded relay and one REST secret; node 2
// also announces node 1's relay. Two `connect --secret` peers with no TURN
// flag, one through each node, meet, and each has allocations on the
// relays its node announced, with credentials that node minted (node 2's
// work on node 1's relay: one secret for the fleet). Neither peer offers
// passive or S-O candidates, so no direct pair can form on loopback and
// the session crosses a relay.
func TestServeClusterAnnouncedRelays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, err := natsd.Start(natsd.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	common := []string{"--cluster", ns.URL(), "--cluster-name", "announce", "--turn-secret", "fleet-secret", "--allow-loopback-peers"}
	n1 := startNode(t, ctx, common...)
	n2 := startNode(t, ctx, append(common, "--announce-relay", "turn:"+n1.stun+"?transport=tcp")...)
	for _, n := range []*node{n1, n2} {
		if !strings.Contains(n.log(), "announcing to joining peers") || !strings.Contains(n.log(), "of cluster announce") {
			t.Fatalf("banner: %s", n.log())
		}
		if code, body := n.get(t, ctx, "/readyz"); code != 200 {
			t.Fatalf("readyz %d %q", code, body)
		}
	}
	dir := t.TempDir()
	secret := secure.NewSecret().String()
	in := filepath.Join(dir, "in")
	randomFile(t, in, 256<<10)
	var peers []*peerRun
	for i, n := range []*node{n1, n2} {
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p := &peerRun{}
		out, err := os.Create(filepath.Join(dir, "out"+string(rune('1'+i))))
		if err != nil {
			t.Fatal(err)
		}
		p.out = out
		p.cmd = icetcp(ctx, "connect", "--signal", n.url, "--addrs", "127.0.0.1", "--disable", "passive,so", "--json", "--timeout", "90s")
		p.cmd.Env = append(p.cmd.Env, "ICETCP_SECRET="+secret)
		p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = f, out, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	for i, p := range peers {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("peer %d: %v\n%s", i+1, err, p.stderr.String())
		}
	}
	relay1 := "turn:" + n1.stun + "?transport=tcp"
	for i, p := range peers {
		evs := events(t, p.stderr.String())
		var announced []any
		servers := map[string]bool{}
		var path string
		for _, e := range evs {
			switch e["event"] {
			case "announced":
				announced = e["relays"].([]any)
			case "relay":
				servers[e["server"].(string)] = true
			case "selected":
				path, _ = e["path"].(string)
			}
		}
		want := 1 + i // node 2 announces its relay and node 1's
		if len(announced) != want || len(servers) != want || !servers[relay1] {
			t.Fatalf("peer %d: announced %v, allocated on %v; want %d relays, %s among them\n%s", i+1, announced, servers, want, relay1, p.stderr.String())
		}
		if path != "relay" {
			t.Fatalf("peer %d selected a %q path, want relay\n%s", i+1, path, p.stderr.String())
		}
	}
	if fileSum(t, filepath.Join(dir, "out1")) != fileSum(t, in) || fileSum(t, filepath.Join(dir, "out2")) != fileSum(t, in) {
		t.Fatal("a payload did not cross intact")
	}
	// Node 1's relay served node 2's peer too; each node's metrics say
	// which relay it is.
	_, m1 := n1.get(t, ctx, "/metrics")
	if !strings.Contains(m1, `relay="`+relay1[:len(relay1)-len("?transport=tcp")]+`"`) || !regexp.MustCompile(`icetcp_turn_allocations_total [1-9]`).MatchString(m1) {
		t.Fatalf("node 1 metrics:\n%s", grep(m1, "node_info", "allocations_total"))
	}
	// A node that loses NATS is not ready. (nats.go marks the connection
	// reconnecting before it calls the handler that logs "lost NATS".)
	ns.Close()
	waitLog(t, n2, "lost NATS")
	if code, body := n2.get(t, ctx, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "NATS") {
		t.Fatalf("readyz %d %q after NATS went away", code, body)
	}
	if code, _ := n2.get(t, ctx, "/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
}

func grep(s string, subs ...string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(line, sub) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestServeDrain: SIGTERM stops the node taking connections (readyz 503,
// no new WebSocket), while the members of an open room still talk; the
// node exits once they have left, before the drain period, and says so.
func TestServeDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startNode(t, ctx, "--drain", "50s", "--log-format", "json")
	a, err := wsclient.Dial(ctx, n.url, "drain")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := wsclient.Dial(ctx, n.url, "drain")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, n, "draining")
	if code, body := n.get(t, ctx, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Fatalf("readyz while draining: %d %q", code, body)
	}
	if c, err := wsclient.Dial(ctx, n.url, "late"); err == nil {
		c.Close()
		t.Fatal("a new client joined a draining node")
	}
	send := signaling.Message{Type: signaling.TypeCandidate, Candidate: "candidate:1 1 TCP 2128609279 10.0.0.1 9 typ host tcptype active"}
	if err := a.Send(ctx, send); err != nil {
		t.Fatal(err)
	}
	if m, err := b.Recv(ctx); err != nil || m.Candidate != send.Candidate {
		t.Fatalf("message during the drain: %+v, %v", m, err)
	}
	a.Close()
	b.Close()
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve still running after its rooms emptied: %s", n.log())
	}
	if !strings.Contains(n.log(), `"msg":"drained in`) {
		t.Fatalf("log: %s", n.log())
	}
	// --log-format json: every line is one JSON object.
	for _, line := range strings.Split(strings.TrimSpace(n.log()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil || v["msg"] == nil {
			t.Fatalf("not a JSON log record: %q", line)
		}
	}
}

// waitLog returns when the node has printed sub; it fails the test when
// the node exits without printing it, or has not after a minute (a
// bound for a hung node, not a pace: each line wakes it).
func waitLog(t *testing.T, n *node, sub string) {
	t.Helper()
	limit := time.NewTimer(time.Minute)
	defer limit.Stop()
	for {
		n.mu.Lock()
		found, printed := strings.Contains(n.out.String(), sub), n.printed
		n.mu.Unlock()
		if found {
			return
		}
		select {
		case <-printed:
		case <-n.exited:
			if !strings.Contains(n.log(), sub) {
				t.Fatalf("serve exited without printing %q: %s", sub, n.log())
			}
			return
		case <-limit.C:
			t.Fatalf("no %q in: %s", sub, n.log())
		}
	}
}
