// Package agentmetrics exports what ICE-TCP agents do as Prometheus
// metrics: one Metrics, registered once, is the agent.Tracer of any number
// of agents (a media server's thousands of sessions share it), and counts
// their checks, punches, relays, selections and consent failures.
//
//	m := agentmetrics.New()
//	prometheus.MustRegister(m)
//	a, _ := agent.New(agent.Config{Tracer: m, ...})
//
// Series (namespace icetcp, subsystem agent):
//
//	icetcp_agent_checks_total{outcome="started|succeeded|failed|answered"}
//	icetcp_agent_punches_total{outcome="connected|failed"}
//	icetcp_agent_punch_attempts      histogram of the SYN round that opened a punch
//	icetcp_agent_relays_total{outcome="allocated|failed"}
//	icetcp_agent_permissions_total{outcome="granted|refused"}
//	icetcp_agent_selected_total{path="direct|relay"}
//	icetcp_agent_connect_seconds     histogram, from the peer's credentials to selection
//	icetcp_agent_sessions_total{end="connected|failed|closed"}
//	icetcp_agent_consent_expired_total
//	icetcp_agent_warnings_total
package agentmetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/candidate"
)

// Metrics is an agent.Tracer that counts into Prometheus collectors, and
// the prometheus.Collector of those. It is safe for concurrent use by many
// agents; Trace never blocks.
type Metrics struct {
	checks, punches, relays, perms, selected, sessions *prometheus.CounterVec
	consent, warnings                                  prometheus.Counter
	attempts, connect                                  prometheus.Histogram
}

var _ agent.Tracer = (*Metrics)(nil)

// New makes the collectors; register the Metrics to export them.
func New() *Metrics {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "icetcp", Subsystem: "agent", Name: name, Help: help}, labels)
	}
	return &Metrics{
		checks:   counter("checks_total", "Connectivity checks, by outcome: started, succeeded (answered to us), failed, answered (by us).", "outcome"),
		punches:  counter("punches_total", "Simultaneous opens (tcp-so), by outcome.", "outcome"),
		relays:   counter("relays_total", "TURN allocations, by outcome.", "outcome"),
		perms:    counter("permissions_total", "TURN permissions asked, by outcome.", "outcome"),
		selected: counter("selected_total", "Pairs selected, by path.", "path"),
		sessions: counter("sessions_total", "Agents that ended gathering-to-selection, by how: connected, failed, closed.", "end"),
		consent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "icetcp", Subsystem: "agent", Name: "consent_expired_total",
			Help: "Selected connections whose peer stopped answering consent checks (RFC 7675)."}),
		warnings: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "icetcp", Subsystem: "agent", Name: "warnings_total",
			Help: "Bad input rejected or side tasks failed (a STUN server, a relay); the agent carried on."}),
		attempts: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "icetcp", Subsystem: "agent", Name: "punch_attempts",
			Help: "The round of SYNs that opened a simultaneous open (1: the first).", Buckets: []float64{1, 2, 3, 5, 10}}),
		connect: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "icetcp", Subsystem: "agent", Name: "connect_seconds",
			Help: "Time from the peer's credentials to the selected pair.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
}

// Selected is the counter of selections on path ("direct" or "relay").
func (m *Metrics) Selected(path string) prometheus.Counter { return m.selected.WithLabelValues(path) }

// Trace counts e.
func (m *Metrics) Trace(e agent.TraceEvent) {
	switch e.Kind {
	case agent.TraceCheckStarted:
		m.checks.WithLabelValues("started").Inc()
	case agent.TraceCheckSucceeded:
		m.checks.WithLabelValues("succeeded").Inc()
	case agent.TraceCheckFailed:
		m.checks.WithLabelValues("failed").Inc()
	case agent.TraceCheckAnswered:
		m.checks.WithLabelValues("answered").Inc()
	case agent.TracePunchFinished:
		if e.Err != nil {
			m.punches.WithLabelValues("failed").Inc()
			return
		}
		m.punches.WithLabelValues("connected").Inc()
		if e.Attempts > 0 {
			m.attempts.Observe(float64(e.Attempts))
		}
	case agent.TraceRelay:
		if e.Err != nil {
			m.relays.WithLabelValues("failed").Inc()
		} else {
			m.relays.WithLabelValues("allocated").Inc()
		}
	case agent.TracePermission:
		if e.Err != nil {
			m.perms.WithLabelValues("refused").Inc()
		} else {
			m.perms.WithLabelValues("granted").Inc()
		}
	case agent.TraceSelected:
		path := "direct"
		if e.Pair != nil && (e.Pair.Local.Type == candidate.Relay || e.Pair.Remote.Type == candidate.Relay) {
			path = "relay"
		}
		m.selected.WithLabelValues(path).Inc()
		m.connect.Observe(e.RTT.Seconds())
	case agent.TraceState:
		switch e.State {
		case agent.StateConnected:
			m.sessions.WithLabelValues("connected").Inc()
		case agent.StateFailed:
			m.sessions.WithLabelValues("failed").Inc()
		case agent.StateClosed:
			m.sessions.WithLabelValues("closed").Inc()
		}
	case agent.TraceConsentExpired:
		m.consent.Inc()
	case agent.TraceWarning:
		m.warnings.Inc()
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.checks, m.punches, m.relays, m.perms, m.selected, m.sessions, m.consent, m.warnings, m.attempts, m.connect}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}
