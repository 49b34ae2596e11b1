package rendezvous

import "github.com/icetcp/icetcp/internal/limits"

// Stats is a snapshot of the rendezvous's counters. The metric tags name
// Prometheus series: "name,kind[,label]" with kind gauge or counter; a map
// field is one series per key under that label (icetcp serve exports them
// with --metrics-addr).
type Stats struct {
	Rooms   int               `metric:"rooms,gauge" help:"Rooms open now."`
	Conns   int               `metric:"connections,gauge" help:"WebSocket connections open now, joined or not."`
	Joins   uint64            `metric:"joins_total,counter" help:"Successful joins."`
	Relayed uint64            `metric:"messages_relayed_total,counter" help:"Agent messages relayed to the peer or queued for it."`
	Refused map[string]uint64 `metric:"refusals_total,counter,reason" help:"Connections and joins refused, by reason."`
	Dropped map[string]uint64 `metric:"drops_total,counter,reason" help:"Joined connections the server cut, by reason."`
	// Cluster counts what a node of a cluster saw (the Event* values);
	// empty without Server.Cluster.
	Cluster map[string]uint64 `metric:"cluster_events_total,counter,event" help:"Cluster events on this node: envelopes dropped or invalid, peers found gone, members lost, store and publish errors."`
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	s.init()
	rooms := s.router.rooms() // the router's lock is never taken inside s.mu
	var cluster map[string]uint64
	if s.Cluster != nil {
		cluster = s.Cluster.stats()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Rooms:   rooms,
		Conns:   s.conns.total,
		Joins:   s.joins,
		Relayed: s.relayed,
		Refused: s.refused.snapshot(),
		Dropped: s.dropped.snapshot(),
		Cluster: cluster,
	}
	// Connections Serve refused at accept count under the same reasons
	// as those ServeHTTP refuses.
	for _, l := range s.listeners {
		r := l.Refused()
		st.Refused[ReasonTooManyConnsPerSource] += r[limits.ReasonPerSource]
		st.Refused[ReasonTooManyConns] += r[limits.ReasonTotal]
	}
	return st
}
