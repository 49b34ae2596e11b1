package agentmetrics_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/agent/agentmetrics"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

func quiet() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}

// connect runs two loopback agents that share m, as a server's sessions do.
func connect(t testing.TB, m *agentmetrics.Metrics) {
	t.Helper()
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	a, _ := agent.New(agent.Config{Addrs: lo, LoggerFactory: quiet(), Tracer: m})
	b, _ := agent.New(agent.Config{Addrs: lo, LoggerFactory: quiet(), Tracer: m})
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chA, chB := signalingtest.Pair()
	errs := make(chan error, 1)
	go func() { _, err := b.Connect(ctx, chB); errs <- err }()
	if _, err := a.Connect(ctx, chA); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func TestMetricsCountTwoAgents(t *testing.T) {
	m := agentmetrics.New()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m); err != nil {
		t.Fatal(err)
	}
	connect(t, m)
	if got := testutil.ToFloat64(m.Selected("direct")); got != 2 {
		t.Fatalf("selected direct %v, want 2 (both agents)", got)
	}
	n, err := testutil.GatherAndCount(reg, "icetcp_agent_checks_total", "icetcp_agent_connect_seconds", "icetcp_agent_sessions_total")
	if err != nil || n == 0 {
		t.Fatalf("gathered %d series: %v", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP icetcp_agent_selected_total Pairs selected, by path.
# TYPE icetcp_agent_selected_total counter
icetcp_agent_selected_total{path="direct"} 2
`), "icetcp_agent_selected_total"); err != nil {
		t.Fatal(err)
	}
}

// One Metrics traces every agent of a process; register it once.
func Example() {
	m := agentmetrics.New()
	prometheus.MustRegister(m)
	defer prometheus.Unregister(m)
	a, err := agent.New(agent.Config{Tracer: m, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, LoggerFactory: quiet()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	fmt.Println("traced by", fmt.Sprintf("%T", m))
	// Output: traced by *agentmetrics.Metrics
}
