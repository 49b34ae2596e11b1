package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/secure"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// demoCmd runs the whole path in one process on loopback: the rendezvous
// and STUN server, two agents joined through the room derived from a fresh
// secret, the end-to-end handshake over the selected connection, and a
// transfer both ways checked by SHA-256.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = commandUsage(fs, "demo", demoHelp)
	size := fs.Int("bytes", 8<<20, "bytes to send in each direction")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size < 0 {
		return usageErr("--bytes must not be negative")
	}
	srv, err := startServer("127.0.0.1:0", "127.0.0.1:0", stderr, defaultServeOptions())
	if err != nil {
		return err
	}
	defer srv.Close()
	url := srv.signalURL()
	fmt.Fprintf(stdout, "rendezvous  %s   STUN over TCP  %s\n", url, srv.stunAddr)
	secret := secure.NewSecret()
	fmt.Fprintf(stdout, "secret      %s   room  %s\n", secret, secure.RoomName(secret))

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	type side struct {
		name   string
		conn   *agent.Conn
		stream *secure.Conn
		took   time.Duration
		err    error
	}
	start := time.Now()
	results := make(chan side, 2)
	for _, name := range []string{"alice", "bob"} {
		go func() {
			c, err := demoPeer(ctx, url, secret)
			s := side{name: name, conn: c, err: err}
			if err == nil {
				s.stream, s.took, s.err = secureConn(ctx, c, secret)
			}
			results <- s
		}()
	}
	peers := map[string]side{}
	for range 2 {
		s := <-results
		peers[s.name] = s
	}
	alice, bob := peers["alice"], peers["bob"]
	for _, s := range []side{alice, bob} {
		if s.conn != nil {
			defer s.conn.Close()
		}
	}
	if err := errors.Join(alice.err, bob.err); err != nil {
		return fmt.Errorf("demo: connect: %w", err)
	}
	fmt.Fprintf(stdout, "connected and secured in %v (alice's checks took %v, her handshake %v)\n", time.Since(start).Round(time.Millisecond),
		alice.conn.ConnectTime().Round(time.Millisecond), alice.took.Round(time.Microsecond))
	for _, s := range []side{alice, bob} {
		fmt.Fprintf(stdout, "  %-5s local  %s\n        remote %s\n", s.name, s.conn.Local(), s.conn.Remote())
	}
	t0 := time.Now()
	if err := transfer(alice.stream, bob.stream, *size); err != nil {
		return fmt.Errorf("demo: transfer: %w", err)
	}
	el := time.Since(t0)
	mbps := float64(2**size) / el.Seconds() / 1e6
	fmt.Fprintf(stdout, "sent %d bytes each way in %v (%.0f MB/s in total), end-to-end encrypted, SHA-256 verified\n", *size, el.Round(time.Millisecond), mbps)
	st := alice.conn.Agent().Stats()
	fmt.Fprintf(stdout, "alice's pairs:\n")
	for _, p := range st.Pairs {
		mark := " "
		if p.Selected {
			mark = "*"
		}
		fmt.Fprintf(stdout, " %s %-11s %-7s %-22s -> %-7s %-22s rtt %-8v sent %d recv %d\n", mark, p.State,
			p.Local.TCPType, p.Local.Addr, p.Remote.TCPType, p.Remote.Addr, p.RTT.Round(time.Microsecond), p.BytesSent, p.BytesReceived)
	}
	return nil
}

func demoPeer(ctx context.Context, url string, secret secure.Secret) (*agent.Conn, error) {
	d := &wsclient.Dialer{RoomKey: secure.RoomKey(secret)}
	ch, err := d.Dial(ctx, url, "")
	if err != nil {
		return nil, err
	}
	if err := secure.ConfirmPeer(ctx, ch, secret, nil); err != nil {
		ch.Close()
		return nil, err
	}
	lf := quietLogger(os.Stderr, false) // ICETCP_LOG=debug shows the agents' logs
	a, err := agent.New(agent.Config{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, LoggerFactory: lf})
	if err != nil {
		ch.Close()
		return nil, err
	}
	c, err := a.Connect(ctx, ch)
	ch.Close() // signaling is not needed once connected
	if err != nil {
		a.Close()
		return nil, err
	}
	return c, nil
}

// transfer sends n random bytes each way at once and compares digests.
func transfer(x, y halfConn, n int) error {
	dx, dy := make([]byte, n), make([]byte, n)
	rand.Read(dx)
	rand.Read(dy)
	errs := make(chan error, 4)
	send := func(c halfConn, d []byte) {
		_, err := c.Write(d)
		if err == nil {
			err = c.CloseWrite()
		}
		errs <- err
	}
	recv := func(c halfConn, want []byte, who string) {
		h := sha256.New()
		if _, err := io.Copy(h, c); err != nil {
			errs <- err
			return
		}
		if [32]byte(h.Sum(nil)) != sha256.Sum256(want) {
			errs <- fmt.Errorf("%s received different bytes", who)
			return
		}
		errs <- nil
	}
	go send(x, dx)
	go send(y, dy)
	go recv(x, dy, "alice")
	go recv(y, dx, "bob")
	var all error
	for range 4 {
		all = errors.Join(all, <-errs)
	}
	return all
}
