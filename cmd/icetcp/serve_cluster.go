package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/pion/logging"

	"github.com/icetcp/icetcp/signaling/rendezvous"
)

// clusterOptions are serve's flags for a rendezvous on a NATS cluster.
type clusterOptions struct {
	urls     string
	name     string
	creds    string
	ca       string
	replicas int
}

func (o *clusterOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.urls, "cluster", "", "join a rendezvous cluster through NATS (JetStream enabled): nats://HOST:PORT[,nats://HOST:PORT...]\n"+
		"(tls://HOST:PORT for TLS; nats://USER:PASS@HOST:PORT for a password); rooms are shared with every node of the same --cluster-name")
	fs.StringVar(&o.name, "cluster-name", rendezvous.DefaultClusterName, "name of the cluster: its NATS subjects and room bucket (several deployments can share one NATS)")
	fs.StringVar(&o.creds, "cluster-creds", "", "NATS credentials file (JWT and NKey seed) for --cluster (a NATS token: $ICETCP_CLUSTER_TOKEN)")
	fs.StringVar(&o.ca, "cluster-ca", "", "PEM file of CA certificates to trust for tls:// NATS servers (default: the system's)")
	fs.IntVar(&o.replicas, "cluster-replicas", 1, "replicas of the room bucket in a JetStream cluster (3 survives the loss of a NATS server)")
}

// check validates the cluster flags.
func (o *clusterOptions) check() error {
	if o.urls == "" {
		if o.creds != "" || o.ca != "" {
			return usageErr("--cluster-creds and --cluster-ca need --cluster")
		}
		return nil
	}
	for _, u := range splitList(o.urls) {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "nats" && p.Scheme != "tls") || p.Host == "" {
			return usageErr("--cluster: %q is not nats://HOST:PORT or tls://HOST:PORT", u)
		}
	}
	if o.replicas < 1 || o.replicas > 5 {
		return usageErr("--cluster-replicas %d: want 1 to 5", o.replicas)
	}
	return nil
}

// natsConn is this node's connection to the cluster, with its state for
// the health endpoint.
type natsConn struct {
	nc *nats.Conn
}

// ready reports whether the node reaches NATS now.
func (n *natsConn) ready() bool { return n == nil || n.nc.IsConnected() }

func (n *natsConn) Close() {
	if n != nil {
		n.nc.Close()
	}
}

// startCluster connects to NATS and opens the cluster's rooms. A node that
// loses NATS keeps trying to reconnect for as long as it runs (its health
// endpoint says not ready meanwhile).
func (o *clusterOptions) startCluster(ctx context.Context, lf logging.LoggerFactory) (*natsConn, *rendezvous.Cluster, error) {
	log := lf.NewLogger("icetcp-nats")
	opts := []nats.Option{
		nats.Name("icetcp serve"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warnf("lost NATS: %v; reconnecting", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Infof("NATS back: %s", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = " on " + sub.Subject
			}
			log.Warnf("NATS%s: %v", subj, err)
		}),
	}
	if o.creds != "" {
		opts = append(opts, nats.UserCredentials(o.creds))
	}
	if tok := os.Getenv("ICETCP_CLUSTER_TOKEN"); tok != "" {
		opts = append(opts, nats.Token(tok))
	}
	if o.ca != "" {
		opts = append(opts, nats.RootCAs(o.ca))
	}
	nc, err := nats.Connect(strings.Join(splitList(o.urls), ","), opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: --cluster %s: %w", redactURLs(o.urls), err)
	}
	c, err := rendezvous.NewCluster(ctx, rendezvous.ClusterConfig{Conn: nc, Name: o.name, Replicas: o.replicas})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("serve: --cluster: %w", err)
	}
	return &natsConn{nc: nc}, c, nil
}

// redactURLs hides passwords in NATS URLs for messages.
func redactURLs(list string) string {
	var out []string
	for _, u := range splitList(list) {
		if p, err := url.Parse(u); err == nil {
			out = append(out, p.Redacted())
		} else {
			out = append(out, "(unparsable URL)")
		}
	}
	return strings.Join(out, ",")
}
