package main

import (
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/icetcp/icetcp/internal/limits"
	"github.com/icetcp/icetcp/internal/relay"
	"github.com/icetcp/icetcp/internal/stuntcp"
)

// metricsNamespace prefixes every series: icetcp_signal_rooms, ...
const metricsNamespace = "icetcp"

// registerStats exports the counters of a server's Stats() as Prometheus
// series named icetcp_<subsystem>_<name>. fn is called once per scrape.
// S is a struct whose exported fields carry a tag
//
//	`metric:"name,gauge|counter[,label]" help:"..."`
//
// Integer and float fields are one series; a map[string]<number> field is
// one series per key, under the label named in the tag. Untagged fields are
// skipped. The STUN and TURN servers' Stats structs plug in the same way:
//
//	registerStats(reg, "stun", stunServer.Stats)
func registerStats[S any](reg prometheus.Registerer, subsystem string, fn func() S) error {
	c, err := newStatsCollector(subsystem, reflect.TypeFor[S](), func() reflect.Value { return reflect.ValueOf(fn()) })
	if err != nil {
		return err
	}
	return reg.Register(c)
}

type statsField struct {
	index int
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	label bool // a map field: one series per key
}

type statsCollector struct {
	fields []statsField
	value  func() reflect.Value
}

func newStatsCollector(subsystem string, t reflect.Type, value func() reflect.Value) (*statsCollector, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("metrics: %v is not a struct", t)
	}
	c := &statsCollector{value: value}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("metric")
		if !ok || !f.IsExported() {
			continue
		}
		parts := strings.Split(tag, ",")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("metrics: %v.%s: tag %q, want name,kind[,label]", t, f.Name, tag)
		}
		sf := statsField{index: i}
		switch parts[1] {
		case "gauge":
			sf.kind = prometheus.GaugeValue
		case "counter":
			sf.kind = prometheus.CounterValue
		default:
			return nil, fmt.Errorf("metrics: %v.%s: kind %q, want gauge or counter", t, f.Name, parts[1])
		}
		var labels []string
		elem := f.Type
		if len(parts) == 3 {
			if f.Type.Kind() != reflect.Map || f.Type.Key().Kind() != reflect.String {
				return nil, fmt.Errorf("metrics: %v.%s: a labelled metric needs a map[string]number", t, f.Name)
			}
			labels, sf.label, elem = []string{parts[2]}, true, f.Type.Elem()
		}
		if !isNumber(elem.Kind()) {
			return nil, fmt.Errorf("metrics: %v.%s: %v is not a number", t, f.Name, elem)
		}
		sf.desc = prometheus.NewDesc(prometheus.BuildFQName(metricsNamespace, subsystem, parts[0]), f.Tag.Get("help"), labels, nil)
		c.fields = append(c.fields, sf)
	}
	if len(c.fields) == 0 {
		return nil, fmt.Errorf("metrics: %v has no metric tags", t)
	}
	return c, nil
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range c.fields {
		ch <- f.desc
	}
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	v := c.value()
	for _, f := range c.fields {
		fv := v.Field(f.index)
		if !f.label {
			ch <- prometheus.MustNewConstMetric(f.desc, f.kind, number(fv))
			continue
		}
		keys := fv.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			ch <- prometheus.MustNewConstMetric(f.desc, f.kind, number(fv.MapIndex(k)), k.String())
		}
	}
}

func isNumber(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func number(v reflect.Value) float64 {
	switch {
	case v.CanInt():
		return float64(v.Int())
	case v.CanUint():
		return float64(v.Uint())
	}
	return v.Float()
}

// metricsServer serves /metrics on its own listener, so that the metrics
// never share a port (or its limits and TLS) with the public rendezvous.
type metricsServer struct {
	addr net.Addr
	http *http.Server
	done chan error
}

// metricsLimits bound the metrics listener like every other one (issue 14:
// its HTTP server had only a header timeout): a scraper keeps one
// connection; a port left open to the world must not take fds.
type metricsLimits struct {
	maxConns, perSource int
	idle, read, write   time.Duration
}

var defaultMetricsLimits = metricsLimits{maxConns: 64, perSource: 8, idle: time.Minute, read: 10 * time.Second, write: 30 * time.Second}

func startMetrics(l net.Listener, reg *prometheus.Registry, lim metricsLimits, log *limits.RefusalLog, extra map[string]http.Handler) (*metricsServer, error) {
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		l.Close()
		return nil, fmt.Errorf("serve: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	for path, h := range extra {
		mux.Handle(path, h)
	}
	m := &metricsServer{addr: l.Addr(), done: make(chan error, 1),
		http: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: lim.read,
			ReadTimeout:       lim.read,
			WriteTimeout:      lim.write,
			IdleTimeout:       lim.idle,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          stdlog.New(io.Discard, "", 0),
		}}
	ll := limits.NewListener(l, limits.NewCounter(lim.maxConns, lim.perSource), log)
	go func() { m.done <- m.http.Serve(ll) }()
	return m, nil
}

func (m *metricsServer) Close() error {
	err := m.http.Close()
	if serr := <-m.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// stunMetrics is the STUN server's Stats in the form registerStats reads.
type stunMetrics struct {
	Open     int               `metric:"connections,gauge" help:"STUN connections open now."`
	Accepted uint64            `metric:"accepted_total,counter" help:"STUN connections taken into service."`
	Answered uint64            `metric:"responses_total,counter" help:"STUN responses sent."`
	Refused  map[string]uint64 `metric:"refusals_total,counter,reason" help:"STUN connections refused or closed, by reason."`
}

func newSTUNMetrics(s stuntcp.Stats) stunMetrics {
	return stunMetrics{Open: s.Open, Accepted: s.Accepted, Answered: s.Answered, Refused: s.Refusals()}
}

// turnMetrics is the TURN relay's Stats in the form registerStats reads.
type turnMetrics struct {
	Allocations      int64             `metric:"allocations,gauge" help:"TCP allocations now."`
	AllocationsTotal uint64            `metric:"allocations_total,counter" help:"TCP allocations made."`
	Relayed          int64             `metric:"relayed_connections,gauge" help:"Peer connections relayed now."`
	RelayedTotal     uint64            `metric:"relayed_connections_total,counter" help:"Peer connections relayed."`
	Bytes            map[string]uint64 `metric:"bytes_total,counter,direction" help:"Bytes relayed, by direction."`
	Refused          map[string]uint64 `metric:"refusals_total,counter,reason" help:"Requests and connections refused, by reason."`
}

func newTURNMetrics(s relay.Stats) turnMetrics {
	r := s.Refused
	return turnMetrics{
		Allocations: s.Allocations, AllocationsTotal: s.AllocationsTotal,
		Relayed: s.Relayed, RelayedTotal: s.RelayedTotal,
		Bytes: map[string]uint64{"to-peer": s.BytesToPeer, "to-client": s.BytesToClient},
		Refused: map[string]uint64{"auth": r.Auth, "quota": r.Quota, "total-quota": r.TotalQuota, "permissions": r.Permissions,
			"peer-forbidden": r.PeerForbidden, "per-source": r.PerSource, "max-conns": r.MaxConns,
			"first-message-timeout": r.FirstMessageTimeout, "bad-first-message": r.BadFirstMessage, "stale-nonce": r.StaleNonce},
	}
}
