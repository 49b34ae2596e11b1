package main

import (
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/icetcp/icetcp/internal/trustproxy"
)

// opsOptions are serve's flags for operators: trusted proxies, the log
// format and the graceful shutdown.
type opsOptions struct {
	trusted   stringList
	logFormat string
	drain     time.Duration
}

func (o *opsOptions) register(fs *flag.FlagSet) {
	fs.Var(&o.trusted, "trusted-proxy", "CIDR or address of a proxy or load balancer whose word on the client's address is taken (repeatable):\n"+
		"Forwarded / X-Forwarded-For on the rendezvous, a PROXY protocol v2 header on the STUN and TURN ports; per-source limits then count the client.\n"+
		"Nobody else's headers are read")
	fs.StringVar(&o.logFormat, "log-format", logFormatText, "log format: text, or json (one object a line)")
	fs.DurationVar(&o.drain, "drain", 30*time.Second, "on SIGTERM: stop taking connections, then wait at most this long for rooms to finish their signaling\n"+
		"and relayed sessions to end before closing everything (a second signal ends at once)")
}

func (o *opsOptions) check() error {
	if _, err := trustproxy.ParseSet(o.trusted); err != nil {
		return usageErr("--trusted-proxy: %v", err)
	}
	if o.logFormat != logFormatText && o.logFormat != logFormatJSON {
		return usageErr("--log-format %q: want text or json", o.logFormat)
	}
	if o.drain < 0 {
		return usageErr("--drain %v: want 0 or more", o.drain)
	}
	return nil
}

// trustedProxies is --trusted-proxy, checked by check.
func (o *opsOptions) trustedProxies() trustproxy.Set {
	s, _ := trustproxy.ParseSet(o.trusted)
	return s
}

// ready reports whether the node should be given new clients: not
// draining, and in a cluster, connected to NATS.
func (s *server) ready() (bool, string) {
	switch {
	case s.draining.Load():
		return false, "draining"
	case !s.nats.ready():
		return false, "NATS unreachable"
	}
	return true, "ready"
}

// healthHandlers serve /healthz (the process answers: 200) and /readyz
// (200 while the node takes new clients, 503 while it drains or has lost
// its cluster), beside /metrics.
func (s *server) healthHandlers() map[string]http.Handler {
	text := func(w http.ResponseWriter, code int, body string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		fmt.Fprintln(w, body)
	}
	return map[string]http.Handler{
		"/healthz": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { text(w, http.StatusOK, "ok") }),
		"/readyz": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if ok, why := s.ready(); !ok {
				text(w, http.StatusServiceUnavailable, why)
				return
			}
			text(w, http.StatusOK, "ready")
		}),
	}
}

// registerNodeInfo exports icetcp_node_info: which cluster node and relay
// this is, so that a fleet's metrics can be told apart and joined
// (every relay's own series carry its scrape's instance label).
func (s *server) registerNodeInfo(reg prometheus.Registerer) error {
	labels := prometheus.Labels{"node": "", "cluster": "", "relay": "", "announced": ""}
	if s.sig.Cluster != nil {
		labels["node"], labels["cluster"] = s.sig.Cluster.Node(), s.clusterName
	}
	if s.relay != nil {
		labels["relay"] = "turn:" + s.turnHostPort()
	}
	if s.sig.Relays != nil {
		labels["announced"] = strings.Join(s.sig.Relays.URIs, " ")
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: metricsNamespace, Name: "node_info", Help: "This serve process: its cluster node, its relay, the relays it announces.", ConstLabels: labels})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("serve: metrics: %w", err)
	}
	return nil
}
