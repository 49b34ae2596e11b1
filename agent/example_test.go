package agent_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

var loopback = []netip.Addr{netip.MustParseAddr("127.0.0.1")}

func quiet() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}

// pairOnLoopback makes two agents on loopback and connects them over an
// in-memory signaling pair, as two peers would; stop closes both.
func pairOnLoopback(ctx context.Context) (x, y *agent.Conn, stop func(), err error) {
	a, _ := agent.New(agent.Config{Addrs: loopback, LoggerFactory: quiet()})
	b, _ := agent.New(agent.Config{Addrs: loopback, LoggerFactory: quiet()})
	stop = func() { a.Close(); b.Close() }
	chA, chB := signalingtest.Pair()
	x, y, err = connectBoth(ctx, a, b, chA, chB)
	return x, y, stop, err
}

// connectBoth runs Connect on both agents at once, as two peers would.
func connectBoth(ctx context.Context, a, b *agent.Agent, chA, chB signaling.Channel) (*agent.Conn, *agent.Conn, error) {
	type res struct {
		c   *agent.Conn
		err error
	}
	rb := make(chan res, 1)
	go func() { c, err := b.Connect(ctx, chB); rb <- res{c, err} }()
	x, err := a.Connect(ctx, chA)
	r := <-rb
	if err != nil || r.err != nil {
		return nil, nil, fmt.Errorf("connect: %v / %v", err, r.err)
	}
	return x, r.c, nil
}

// Two agents connect over an in-memory signaling pair (an application
// passes a WebSocket channel from wsclient.Dial, or its own) and talk over
// the selected connection, a net.Conn.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, _ := agent.New(agent.Config{Addrs: loopback, LoggerFactory: quiet()})
	b, _ := agent.New(agent.Config{Addrs: loopback, LoggerFactory: quiet()})
	defer a.Close()
	defer b.Close()
	chA, chB := signalingtest.Pair() // in an application: wsclient.Dial(ctx, "wss://...", room)
	x, y, err := connectBoth(ctx, a, b, chA, chB)
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() {
		x.Write([]byte("hello over ICE-TCP"))
		x.CloseWrite()
	}()
	got, _ := io.ReadAll(y)
	fmt.Printf("%s (%s path)\n", got, y.Path())
	// Output: hello over ICE-TCP (direct path)
}

// A media server shares one public TCP port between its sessions: every
// session's agent has the Mux's address as its only passive candidate.
func ExampleMux() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	mux, _ := agent.NewMux(l, agent.MuxConfig{LoggerFactory: quiet()})
	defer mux.Close()
	server, _ := agent.New(agent.Config{Mux: mux, DisableActive: true, DisableSO: true, LoggerFactory: quiet()})
	client, _ := agent.New(agent.Config{Addrs: loopback, DisablePassive: true, DisableSO: true, LoggerFactory: quiet()})
	defer server.Close()
	defer client.Close()
	chS, chC := signalingtest.Pair()
	s, _, err := connectBoth(ctx, server, client, chS, chC)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("session on the shared port:", s.Local().Addr == mux.Addr())
	// Output: session on the shared port: true
}

// The packet API carries one RTP or RTCP packet per RFC 4571 frame, so
// packet boundaries survive the TCP stream.
func ExampleConn_ReadPacket() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x, y, stop, err := pairOnLoopback(ctx)
	defer stop()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, size := range []int{1200, 80, 1400} { // an RTP packet, an RTCP packet, ...
		x.WritePacket(make([]byte, size))
	}
	buf := make([]byte, 1500)
	for range 3 {
		n, _ := y.ReadPacket(buf)
		fmt.Println("packet of", n, "bytes")
	}
	// Output:
	// packet of 1200 bytes
	// packet of 80 bytes
	// packet of 1400 bytes
}

// The Conn is a plain transport, as ICE is under DTLS in WebRTC: security
// goes on top. Here TLS 1.3 runs over it with a certificate the client
// pins (how the two peers learn each other's certificate, e.g. a
// fingerprint over authenticated signaling, is up to the application).
func ExampleConn_tls() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x, y, stop, err := pairOnLoopback(ctx)
	defer stop()
	if err != nil {
		fmt.Println(err)
		return
	}
	cert, pool := selfSigned("peer-b")
	go func() {
		srv := tls.Server(y, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		io.Copy(srv, srv) // echo
		srv.Close()
	}()
	cli := tls.Client(x, &tls.Config{RootCAs: pool, ServerName: "peer-b", MinVersion: tls.VersionTLS13})
	cli.Write([]byte("private"))
	buf := make([]byte, 7)
	io.ReadFull(cli, buf)
	fmt.Printf("%s, over %s\n", buf, tls.VersionName(cli.ConnectionState().Version))
	// Output: private, over TLS 1.3
}

func selfSigned(name string) (tls.Certificate, *x509.CertPool) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, pool
}

// A Tracer sees every step of an agent on the agent's own goroutine: here
// it counts them by kind, as a metrics exporter would (package
// agent/agentmetrics does it for Prometheus).
func ExampleTracer() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex // Trace runs on the agent's goroutine; the example reads from its own
	seen := map[agent.TraceKind]int{}
	count := agent.TracerFunc(func(e agent.TraceEvent) {
		mu.Lock()
		seen[e.Kind]++
		mu.Unlock()
	})
	a, _ := agent.New(agent.Config{Addrs: loopback, LoggerFactory: quiet(), Tracer: count})
	b, _ := agent.New(agent.Config{Addrs: loopback, LoggerFactory: quiet()})
	defer a.Close()
	defer b.Close()
	chA, chB := signalingtest.Pair()
	if _, _, err := connectBoth(ctx, a, b, chA, chB); err != nil {
		fmt.Println(err)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Println("gathered:", seen[agent.TraceLocal] > 0)
	fmt.Println("the peer's candidates:", seen[agent.TraceRemote] > 0)
	fmt.Println("checks answered or succeeded:", seen[agent.TraceCheckSucceeded]+seen[agent.TraceCheckAnswered] > 0)
	fmt.Println("selected:", seen[agent.TraceSelected])
	// Output:
	// gathered: true
	// the peer's candidates: true
	// checks answered or succeeded: true
	// selected: 1
}
