package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/secure"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// secureFlags are connect's flags for the secret, the rendezvous's token
// and TLS, and liveness.
type secureFlags struct {
	signal         string
	secret         string
	token          string
	ca             string
	consentTimeout time.Duration
}

func (f *secureFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.secret, "secret", "", "`SECRET` shared with the peer, made by: icetcp secret (also $ICETCP_SECRET): the room is derived from it and the stream is end-to-end encrypted and authenticated")
	fs.StringVar(&f.token, "token", "", "join `TOKEN` for a rendezvous that requires one, made by: icetcp token (also $ICETCP_TOKEN)")
	fs.StringVar(&f.ca, "ca", "", "PEM `FILE` of CA certificates to trust for a wss:// rendezvous and turns: servers (default: the system's)")
	fs.DurationVar(&f.consentTimeout, "consent-timeout", 0, "declare the peer gone after this long without an answer to consent checks (default 30s)")
}

// fromEnv fills what the flags left empty from the environment: a secret
// on the command line is visible to every local user in the process list.
func (f *secureFlags) fromEnv() {
	if f.signal == "" {
		f.signal = os.Getenv("ICETCP_SIGNAL")
	}
	if f.secret == "" {
		f.secret = os.Getenv("ICETCP_SECRET")
	}
	if f.token == "" {
		f.token = os.Getenv("ICETCP_TOKEN")
	}
}

// parseSecret returns the secret, or ok=false without one.
func (f *secureFlags) parseSecret() (s secure.Secret, ok bool, err error) {
	if f.secret == "" {
		return s, false, nil
	}
	s, err = secure.ParseSecret(f.secret)
	if err != nil {
		return s, false, usageErr("--secret: %v", err)
	}
	return s, true, nil
}

// dialer is the rendezvous client these flags describe.
func (f *secureFlags) dialer() (*wsclient.Dialer, error) {
	d := &wsclient.Dialer{Token: f.token}
	if f.ca != "" {
		pem, err := os.ReadFile(f.ca)
		if err != nil {
			return nil, usageErr("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr("--ca: no PEM certificate in %s", f.ca)
		}
		d.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return d, nil
}

func (f *secureFlags) apply(cfg *agent.Config) {
	if f.consentTimeout > 0 {
		cfg.ConsentTimeout = f.consentTimeout
		cfg.ConsentInterval = f.consentTimeout / 6
	}
}

// dialHint adds what the user can do about a dial error.
func dialHint(err error) error {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w (the rendezvous's certificate is not signed by a CA this host trusts: pass --ca FILE)", err)
	case errors.As(err, &invalid), errors.As(err, &host):
		return fmt.Errorf("%w (the rendezvous's certificate does not fit: check the URL's host name and the certificate)", err)
	case errors.Is(err, signaling.ErrUnauthorized):
		return fmt.Errorf("%w (this rendezvous requires --token)", err)
	}
	return err
}

// confirmedPeer waits in the room of the secret on ch until a peer proves
// it holds the secret (secure.ConfirmPeer), and returns the channel to
// that peer. One that fails is dropped: we leave the room and join it
// again, and wait for the right one, until ctx ends.
func confirmedPeer(ctx context.Context, d *wsclient.Dialer, url, room string, ch *wsclient.Client, s secure.Secret, ev *eventWriter) (*wsclient.Client, error) {
	for {
		err := secure.ConfirmPeer(ctx, ch, s, nil)
		if err == nil {
			return ch, nil
		}
		ch.Close()
		if !errors.Is(err, secure.ErrUnconfirmed) {
			return nil, err
		}
		ev.warning(fmt.Sprintf("%v; waiting in the room for the peer that holds the secret", err))
		if ch, err = d.Dial(ctx, url, room); err != nil {
			return nil, err
		}
	}
}

// redial is Config.Redial for a room: a session whose path broke with no
// other pair to move to restarts ICE, and both sides meet in the room
// again; with a secret (or a code's agreed key) each proves it first.
func redial(d *wsclient.Dialer, url, room string, proof *secure.Secret, ev *eventWriter) func(context.Context) (signaling.Channel, error) {
	return func(ctx context.Context) (signaling.Channel, error) {
		ch, err := d.Dial(ctx, url, room)
		if err == nil && proof != nil {
			ch, err = confirmedPeer(ctx, d, url, room, ch, *proof, ev)
		}
		if err != nil {
			return nil, err // not a nil *wsclient.Client in an interface
		}
		return ch, nil
	}
}

// handshakeTimeout bounds the secure handshake after ICE selection; the
// peer is connected by then, so it takes one round trip and a half.
const handshakeTimeout = 15 * time.Second

// secureConn runs the end-to-end handshake over the selected connection.
// The ICE controlling agent initiates: both sides know their role by now.
func secureConn(ctx context.Context, conn *agent.Conn, s secure.Secret) (*secure.Conn, time.Duration, error) {
	start := time.Now()
	cfg := secure.Config{HandshakeTimeout: handshakeTimeout}
	var sc *secure.Conn
	var err error
	if conn.Agent().Stats().Role == agent.RoleControlling {
		sc, err = secure.Client(ctx, conn, s, cfg)
	} else {
		sc, err = secure.Server(ctx, conn, s, cfg)
	}
	return sc, time.Since(start), err
}

// halfConn is a stream whose sending side can end on its own: the agent's
// Conn (TCP FIN) or a secure Conn (authenticated end-of-stream).
type halfConn interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// pumpResult counts what crossed.
type pumpResult struct {
	sent, received int64
}

// pump copies stdin to the peer and the peer to stdout until both
// directions have ended; stdin's end is passed on with CloseWrite. It
// returns at the first failure, so a vanished peer is reported even while
// stdin is still open, and at once when ctx ends (a signal). It does not
// close conn: the caller ends the session cleanly (Close) or, after an
// error, interrupts it (Abort), which also ends the copies.
func pump(ctx context.Context, conn halfConn, stdin io.Reader, stdout io.Writer) (pumpResult, error) {
	type result struct {
		n   int64
		err error
	}
	sent, received := make(chan result, 1), make(chan result, 1)
	go func() {
		n, err := io.Copy(conn, stdin)
		if err == nil {
			err = conn.CloseWrite()
		}
		if err != nil {
			err = fmt.Errorf("sending: %w", err)
		}
		sent <- result{n, err}
	}()
	go func() {
		n, err := io.Copy(stdout, conn)
		if err != nil {
			err = fmt.Errorf("receiving: %w", err)
		}
		received <- result{n, err}
	}()
	var res pumpResult
	waitSent, waitReceived := sent, received // set to nil once done
	for range 2 {
		select {
		case <-ctx.Done():
			return res, context.Cause(ctx)
		case r := <-waitSent:
			res.sent, waitSent = r.n, nil
			if r.err != nil {
				return res, r.err
			}
		case r := <-waitReceived:
			res.received, waitReceived = r.n, nil
			if r.err != nil {
				return res, r.err
			}
		}
	}
	return res, nil
}
