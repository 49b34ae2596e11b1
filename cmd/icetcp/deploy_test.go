package main

import (
	"bufio"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

// TestDeployExample: the example configuration in deploy/ is one serve
// accepts: its flags parse and pass serve's checks (nothing is started).
func TestDeployExample(t *testing.T) {
	f, err := os.Open("../../deploy/icetcp.env")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("not KEY=VALUE: %q", line)
		}
		env[k] = v
	}
	args := strings.Fields(env["ICETCP_SERVE_ARGS"])
	if len(args) == 0 {
		t.Fatal("no ICETCP_SERVE_ARGS")
	}
	for _, k := range []string{"ICETCP_TURN_SECRET", "ICETCP_TOKEN_SECRET", "ICETCP_CLUSTER_TOKEN"} {
		if env[k] == "" {
			t.Errorf("no %s", k)
		}
		t.Setenv(k, env[k])
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("signal-addr", "", "")
	fs.String("stun-addr", "", "")
	var opt serveOptions
	opt.register(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		t.Fatalf("ICETCP_SERVE_ARGS: %v (left %q)", err, fs.Args())
	}
	if err := opt.check(); err != nil {
		t.Fatalf("ICETCP_SERVE_ARGS: %v", err)
	}
	if opt.cluster.urls == "" || len(opt.announce) == 0 || len(opt.trusted) == 0 || opt.logFormat != logFormatJSON {
		t.Fatalf("the example lost what it shows: %+v", opt)
	}
}
