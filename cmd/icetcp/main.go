// Command icetcp connects two peers behind NATs and firewalls over TCP with
// ICE (RFC 8445, RFC 6544) and carries stdin/stdout between them.
//
//	icetcp send    --signal URL [--secret S] [-o PATH] FILE|DIR...
//	icetcp receive --signal URL [-o PATH] [--force] CODE
//	icetcp version
//	icetcp serve   [--signal-addr ADDR] [--stun-addr ADDR] [--turn-user U --turn-pass P] [--turn-secret S]
//	               [--tls-cert F --tls-key F] [--turns-addr ADDR] [--token-secret S] [--metrics-addr ADDR]
//	icetcp connect --signal ws[s]://HOST:PORT --secret S|--room NAME [--token T] [--ca F] [--addrs IP[,IP]]
//	               [--stun HOST:PORT] [--turn URL --turn-user U --turn-pass P | --turn-secret S] [--proxy URL] [--json]
//	icetcp natcheck --stun HOST:PORT [--json]
//	icetcp secret  a fresh secret for connect --secret
//	icetcp token   --token-secret S [--ttl 24h] [--subject NAME]
//	icetcp demo
//	icetcp lab     (root; built with -tags lab) NAT lab matrix
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/icetcp/icetcp/agent"
)

const usage = `usage: icetcp <command> [flags]

commands:
  send      send files or directories to one receiver: prints a short code to read to it
  receive   receive them with that code (verified with SHA-256, resumable)
  connect   join a room, connect to the peer, copy stdin to it and it to stdout
  serve     rendezvous (WebSocket signaling, rooms of two), STUN and a TURN relay over TCP
  natcheck  how this host's NAT treats TCP: mapping, port allocation, inbound SYNs
  secret    print a fresh secret for scripts (connect, send and receive --secret)
  token     mint a join token for a rendezvous started with --token-secret
  demo      a server and two agents on loopback, connected, data both ways
  lab       build the namespace NAT lab and print the connectivity matrix (root; needs a binary built with -tags lab)
  version   the version and source revision of this binary

examples:
  icetcp send --signal ws://rv.example:8080 photos/        (prints a code, e.g. 7-purple-canal-ozone)
  icetcp receive --signal ws://rv.example:8080 7-purple-canal-ozone

run 'icetcp <command> -h' (or 'icetcp help <command>') for the command's flags and examples
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a command and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := interruptible()
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = serveCmd(ctx, args[1:], stderr)
	case "connect":
		err = connectCmd(ctx, args[1:], stdin, stdout, stderr)
	case "send":
		err = sendCmd(ctx, args[1:], stdout, stderr)
	case "receive":
		err = receiveCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		err = versionCmd(args[1:], stdout)
	case "secret":
		err = secretCmd(args[1:], stdout, stderr)
	case "token":
		err = tokenCmd(args[1:], stdout, stderr, time.Now())
	case "demo":
		err = demoCmd(ctx, args[1:], stdout, stderr)
	case "lab":
		err = labCmd(ctx, args[1:], stdout, stderr)
	case "natcheck":
		err = natcheckCmd(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		if len(args) > 1 {
			if _, ok := helpFor(args[1]); ok {
				return run([]string{args[1], "-h"}, stdin, stdout, stdout)
			}
		}
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "icetcp: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ie *interruptedError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ie) || errors.As(context.Cause(ctx), &ie) && errors.Is(err, context.Canceled):
		var se silentError
		if !errors.As(err, &se) {
			fmt.Fprintf(stderr, "icetcp %s: interrupted (%v)\n", args[0], ie.sig)
		}
		return ie.exitCode()
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "icetcp %s: %v\n  (icetcp %s -h shows the usage)\n", args[0], err, args[0])
		return 2
	case proxyRefused(err):
		var se silentError
		if !errors.As(err, &se) {
			fmt.Fprintf(stderr, "icetcp %s: %v\n", args[0], err)
		}
		return exitProxyRefused
	default:
		var se silentError
		if !errors.As(err, &se) {
			fmt.Fprintf(stderr, "icetcp %s: %v\n", args[0], err)
		}
		return 1
	}
}

var errUsage = errors.New("usage")

// exitProxyRefused is the exit code when a proxy refused us (wrong or
// missing credentials, a target it forbids): the configuration, not the
// network, needs a change.
const exitProxyRefused = 3

func proxyRefused(err error) bool {
	var pe *agent.ProxyError
	return errors.As(err, &pe) && pe.Refused()
}

// interruptedError is the cause of the context a signal ended: SIGINT
// (Ctrl-C) or SIGTERM.
type interruptedError struct{ sig os.Signal }

func (e *interruptedError) Error() string { return "interrupted by " + e.sig.String() }

// exitCode is the shell's code for a process ended by the signal: 128 + n.
func (e *interruptedError) exitCode() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 130
}

// interruptible returns a context that the first SIGINT or SIGTERM
// cancels with an *interruptedError cause, so a command stops at once and
// says so; a second signal ends the process on the spot (exit 128+n), for
// a command that does not stop.
func interruptible() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			cancel(&interruptedError{sig: s})
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			os.Exit((&interruptedError{sig: s}).exitCode())
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// silentError is a failure already reported (as a JSON event).
type silentError struct{ error }

func (e silentError) Unwrap() error { return e.error }

// usageError is a command line that cannot run: exit 2, before anything
// starts.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

func usageErr(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// splitList splits a comma-separated flag value, trimming spaces and
// dropping empty entries; nil when there are none.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
