package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/signaling"
)

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	signalAddr := fs.String("signal-addr", ":8080", "address of the WebSocket rendezvous")
	stunAddr := fs.String("stun-addr", ":3478", "address of the STUN Binding server over TCP (empty: none)")
	stunAlt := fs.String("stun-alt-addr", "", "RFC 5780 alternate IP[:PORT] of the STUN server (PORT default: the --stun-addr port + 1);\n"+
		"the server then listens on both IPs and both ports, sends OTHER-ADDRESS and runs SYN probes for icetcp natcheck;\n"+
		"needs --stun-addr with a specific IP")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	var primary, alternate netip.AddrPort
	if *stunAlt != "" {
		var err error
		if primary, alternate, err = parseAltAddr(*stunAddr, *stunAlt); err != nil {
			return err
		}
		*stunAddr = "" // the RFC 5780 listeners replace the single one
	}
	srv, err := startServer(*signalAddr, *stunAddr, stderr)
	if err != nil {
		return err
	}
	if alternate.IsValid() {
		if err := srv.startRFC5780(primary, alternate, stderr); err != nil {
			srv.Close()
			return err
		}
	}
	fmt.Fprintf(stderr, "icetcp serve: signaling on ws://%s, STUN over TCP on %s\n", srv.signalAddr, srv.stunAddrString())
	if srv.stunAlt.IsValid() {
		fmt.Fprintf(stderr, "icetcp serve: STUN alternate address (RFC 5780) %s; listening on %s\n", srv.stunAlt, strings.Join(srv.stunListening, ", "))
	}
	<-ctx.Done()
	return srv.Close()
}

// server is the rendezvous plus the STUN server, as one process runs them.
type server struct {
	signalAddr net.Addr
	stunAddr   net.Addr
	http       *http.Server
	sig        *signaling.Server
	stun       *stuntcp.Server
	done       chan error
	// With an RFC 5780 alternate address: that address, and all four
	// listening addresses.
	stunAlt       netip.AddrPort
	stunListening []string
}

func startServer(signalAddr, stunAddr string, logOut io.Writer) (*server, error) {
	s := &server{sig: &signaling.Server{}, done: make(chan error, 2)}
	sl, err := net.Listen("tcp", signalAddr)
	if err != nil {
		return nil, fmt.Errorf("serve: signaling: %w", err)
	}
	s.signalAddr = sl.Addr()
	s.http = &http.Server{Handler: s.sig, ReadHeaderTimeout: 10 * time.Second}
	go func() { s.done <- s.http.Serve(sl) }()
	if stunAddr != "" {
		tl, err := net.Listen("tcp", stunAddr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("serve: stun: %w", err)
		}
		s.stunAddr = tl.Addr()
		s.stun = &stuntcp.Server{LoggerFactory: quietLogger(logOut, false)}
		go func() { s.done <- s.stun.Serve(tl) }()
	}
	return s, nil
}

// parseAltAddr reads --stun-addr (which must name a specific IP) and
// --stun-alt-addr (IP, or IP:PORT).
func parseAltAddr(stunAddr, alt string) (primary, alternate netip.AddrPort, err error) {
	primary, err = netip.ParseAddrPort(stunAddr)
	if err != nil || primary.Addr().IsUnspecified() {
		return primary, alternate, usageErr("--stun-alt-addr needs --stun-addr with a specific IP:PORT, not %q", stunAddr)
	}
	if alternate, err = netip.ParseAddrPort(alt); err == nil {
		return primary, alternate, nil
	}
	ip, err := netip.ParseAddr(alt)
	if err != nil {
		return primary, alternate, usageErr("--stun-alt-addr %q is neither IP nor IP:PORT", alt)
	}
	port := primary.Port()
	if port != 0 { // 0 stays 0: both ports picked by the kernel
		if port == 65535 {
			return primary, alternate, usageErr("--stun-alt-addr: no port after %d; give IP:PORT", port)
		}
		port++
	}
	return primary, netip.AddrPortFrom(ip, port), nil
}

// startRFC5780 runs the STUN server on the four listeners of a primary
// and an alternate address.
func (s *server) startRFC5780(primary, alternate netip.AddrPort, logOut io.Writer) error {
	ls, p, a, err := stuntcp.ListenRFC5780(primary, alternate)
	if err != nil {
		return fmt.Errorf("serve: stun: %w", err)
	}
	s.stun = &stuntcp.Server{Primary: p, Alternate: a, LoggerFactory: quietLogger(logOut, false)}
	s.stunAddr, s.stunAlt = ls[0].Addr(), a
	for _, l := range ls {
		s.stunListening = append(s.stunListening, l.Addr().String())
		go func() {
			if err := s.stun.Serve(l); !errors.Is(err, stuntcp.ErrServerClosed) {
				fmt.Fprintf(logOut, "icetcp serve: stun: %v\n", err)
			}
		}()
	}
	return nil
}

func (s *server) stunAddrString() string {
	if s.stunAddr == nil {
		return "(off)"
	}
	return s.stunAddr.String()
}

// Close stops both servers and waits for their connections.
func (s *server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.sig.Close()
	err := s.http.Shutdown(ctx)
	if s.stun != nil {
		err = errors.Join(err, s.stun.Close())
	}
	return err
}
