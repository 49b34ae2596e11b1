package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startServeAlt runs `icetcp serve` with an RFC 5780 alternate address on
// 127.0.0.2 and returns the STUN primary address it printed.
func startServeAlt(t *testing.T, ctx context.Context) string {
	t.Helper()
	lines := startBanner(t, icetcp(ctx, "serve", "--signal-addr", "127.0.0.1:0", "--stun-addr", "127.0.0.1:0", "--stun-alt-addr", "127.0.0.2"))
	m := regexp.MustCompile(`STUN (?:and TURN )?over TCP on (\S+)`).FindStringSubmatch(lines[0])
	if m == nil || !strings.Contains(lines[1], "alternate address (RFC 5780) 127.0.0.2:") {
		t.Fatalf("unexpected serve banner %q", lines)
	}
	return m[1]
}

// startBanner starts a `serve` command, returns the lines of its banner
// (printed once every listener is up, up to "ready") and stops it (SIGINT)
// when the test ends.
func startBanner(t *testing.T, cmd *exec.Cmd) []string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	r := bufio.NewReader(stderr)
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("serve printed %q: %v", lines, err)
		}
		if strings.TrimSpace(line) == "icetcp serve: ready" {
			break
		}
		lines = append(lines, line)
	}
	go io.Copy(io.Discard, r)
	return lines
}

func TestNatcheckLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stun := startServeAlt(t, ctx)

	var out, errb bytes.Buffer
	if code := run([]string{"natcheck", "--stun", stun, "--json"}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON object: %q", out.String())
	}
	want := map[string]any{"mapping": "nonat", "port_preserving": true, "allocation": "preserve", "delta": 0.0,
		"inbound_syn": "pass", "filtering": "none", "class": "v1 mapping=nonat port=preserve alloc=preserve syn=pass"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["mapped"] != got["local"] || !strings.HasPrefix(got["local"].(string), "127.0.0.1:") {
		t.Errorf("mapped %v, local %v", got["mapped"], got["local"])
	}
	if srv := got["server"].(map[string]any); !strings.HasPrefix(srv["other"].(string), "127.0.0.2:") {
		t.Errorf("server %v", srv)
	}

	out.Reset()
	if code := run([]string{"natcheck", "--stun", stun}, nil, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"mapping          no NAT", "inbound SYN      passed", "filtering        none (no NAT)", "class            v1 mapping=nonat"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestNatcheckUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := icetcp(ctx, "natcheck", "--stun", "127.0.0.1:1", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v", err)
	}
	if !strings.Contains(stderr.String(), "STUN server unreachable: 127.0.0.1:1") || !strings.Contains(stderr.String(), "refused") {
		t.Fatalf("stderr %q", stderr.String())
	}
	var obj map[string]string
	if json.Unmarshal(stdout.Bytes(), &obj) != nil || !strings.Contains(obj["error"], "unreachable") {
		t.Fatalf("stdout %q", stdout.String())
	}
}

func TestNatcheckUsage(t *testing.T) {
	for _, args := range [][]string{
		{"natcheck"},
		{"natcheck", "--stun", "127.0.0.1:3478", "extra"},
		{"natcheck", "--stun", "nocolon"},
		{"natcheck", "--stun", "127.0.0.1:3478", "--local", "not-an-ip"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, nil, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

func TestParseAltAddr(t *testing.T) {
	for _, tc := range []struct {
		stun, alt, p, a string // a "" means a usage error
	}{
		{"198.51.100.10:3478", "198.51.100.11", "198.51.100.10:3478", "198.51.100.11:3479"},
		{"198.51.100.10:3478", "198.51.100.11:443", "198.51.100.10:3478", "198.51.100.11:443"},
		{"127.0.0.1:0", "127.0.0.2", "127.0.0.1:0", "127.0.0.2:0"},
		{":3478", "198.51.100.11", "", ""},
		{"0.0.0.0:3478", "198.51.100.11", "", ""},
		{"198.51.100.10:3478", "alt.example", "", ""},
		{"198.51.100.10:65535", "198.51.100.11", "", ""},
	} {
		p, a, err := parseAltAddr(tc.stun, tc.alt)
		if tc.a == "" {
			if err == nil {
				t.Errorf("%s %s: accepted as %v %v", tc.stun, tc.alt, p, a)
			}
			continue
		}
		if err != nil || p != netip.MustParseAddrPort(tc.p) || a != netip.MustParseAddrPort(tc.a) {
			t.Errorf("%s %s: %v %v %v", tc.stun, tc.alt, p, a, err)
		}
	}
}
