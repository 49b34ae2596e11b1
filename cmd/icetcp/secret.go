package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/icetcp/icetcp/secure"
	"github.com/icetcp/icetcp/signaling/rendezvous"
)

// secretCmd prints a fresh secret for `connect --secret`: give it to the
// peer out of band (read it aloud, send it in a chat you trust).
func secretCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("secret", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = commandUsage(fs, "secret", secretHelp)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	fmt.Fprintln(stdout, secure.NewSecret())
	return nil
}

// tokenCmd mints a join token for a rendezvous started with the same
// --token-secret.
func tokenCmd(args []string, stdout, stderr io.Writer, now time.Time) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = commandUsage(fs, "token", tokenHelp)
	key := fs.String("token-secret", "", "the rendezvous's --token-secret (also $ICETCP_TOKEN_SECRET)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	subject := fs.String("subject", "", "optional name of the holder, shown in the rendezvous's logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *key == "" {
		*key = os.Getenv("ICETCP_TOKEN_SECRET")
	}
	if len(*key) < rendezvous.MinTokenKeyLen {
		return usageErr("--token-secret: %d bytes, want at least %d", len(*key), rendezvous.MinTokenKeyLen)
	}
	if *ttl <= 0 {
		return usageErr("--ttl must be positive")
	}
	tok, err := rendezvous.MintToken([]byte(*key), rendezvous.Token{Expires: now.Add(*ttl), Subject: *subject})
	if err != nil {
		return usageErr("%v", err)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
