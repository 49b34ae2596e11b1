package main

import (
	"flag"
	"fmt"
)

// commandHelp is a command's --help: its usage line, what it does and two
// examples; the flags follow.
type commandHelp struct {
	usage    string // after "icetcp NAME "
	what     string
	examples [2]string
}

// commandUsage is a FlagSet's Usage for command name.
func commandUsage(fs *flag.FlagSet, name string, h commandHelp) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: icetcp %s %s\n\n%s\n\nexamples:\n", name, h.usage, h.what)
		for _, e := range h.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
		fmt.Fprintf(w, "\nflags:\n")
		fs.PrintDefaults()
	}
}

var serveHelp = commandHelp{
	usage: "[--signal-addr ADDR] [--stun-addr ADDR] [--turn-user U --turn-pass P | --turn-secret S] [flags]",
	what: "Runs the rendezvous (WebSocket signaling, rooms of two), a STUN server and a TURN relay\n" +
		"over TCP (RFC 6062), for peers that connect, send or receive through it.",
	examples: [2]string{
		"icetcp serve --signal-addr :8080 --stun-addr :3478 --turn-user alice --turn-pass wonderland",
		"icetcp serve --signal-addr :443 --tls-cert cert.pem --tls-key key.pem --token-secret \"$SECRET\"",
	},
}

var connectHelp = commandHelp{
	usage: "--signal URL (--secret SECRET | --room NAME) [flags]",
	what: "Joins a room on the rendezvous, connects to the peer over TCP (direct, punched or relayed)\n" +
		"and copies stdin to the peer and the peer to stdout, end-to-end encrypted with --secret.\n" +
		"Progress and a summary go to stderr; Ctrl-C stops it and tells the peer.",
	examples: [2]string{
		"icetcp connect --signal ws://rv.example:8080 --secret \"$(icetcp secret)\" < backup.tar",
		"icetcp connect --signal ws://rv.example:8080 --secret 7kq3-m9xa-2fpd-wz0h-c4rt-e8vb-nj5s --turn turn:rv.example:3478 --turn-user alice --turn-pass wonderland > backup.tar",
	},
}

var sendHelp = commandHelp{
	usage: "--signal URL [--secret SECRET] [flags] FILE|DIR...",
	what: "Sends files or directories to one receiver. It prints a code such as 7-purple-canal-ozone\n" +
		"to read to the receiver, who runs icetcp receive with it. Name, size and SHA-256 go first;\n" +
		"both sides exit 0 only once the receiver verified the whole file. A directory (or several\n" +
		"paths) travels as a tar stream. If the receiver is killed, send waits for it to come back\n" +
		"with the same code and goes on from the bytes it has.",
	examples: [2]string{
		"icetcp send --signal ws://rv.example:8080 photos.tar",
		"icetcp send --signal ws://rv.example:8080 --json report.pdf notes/",
	},
}

var receiveHelp = commandHelp{
	usage: "--signal URL [-o PATH] [--force] [flags] CODE   (or --secret SECRET instead of CODE)",
	what: "Receives what icetcp send sends, with the code it printed. The file goes to -o PATH, or\n" +
		"by its sent name into the current directory (never outside it, never over an existing file\n" +
		"without --force); it is checked against the sender's SHA-256 before it gets its name.\n" +
		"Run it again with the same code and -o to resume an interrupted transfer.",
	examples: [2]string{
		"icetcp receive --signal ws://rv.example:8080 7-purple-canal-ozone",
		"icetcp receive --signal ws://rv.example:8080 -o /data/photos.tar --force 7-purple-canal-ozone",
	},
}

var natcheckHelp = commandHelp{
	usage: "--stun HOST:PORT [--json]",
	what:  "Measures how this host's NAT treats TCP: mapping (RFC 5780 over TCP), port allocation, inbound SYNs.",
	examples: [2]string{
		"icetcp natcheck --stun stun.example:3478",
		"icetcp natcheck --stun stun.example:3478 --json | jq .class",
	},
}

var secretHelp = commandHelp{
	usage: "",
	what: "Prints a fresh 130-bit secret for connect, send and receive --secret; both peers use the\n" +
		"same one. For scripts and machines; people exchanging a file use send's short code instead.",
	examples: [2]string{
		"icetcp secret",
		"export ICETCP_SECRET=$(icetcp secret)",
	},
}

var tokenHelp = commandHelp{
	usage: "--token-secret S [--ttl 24h] [--subject NAME]",
	what:  "Mints a join token for a rendezvous started with the same --token-secret.",
	examples: [2]string{
		"icetcp token --token-secret \"$SECRET\"",
		"icetcp token --token-secret \"$SECRET\" --ttl 1h --subject alice",
	},
}

var demoHelp = commandHelp{
	usage: "",
	what:  "Starts a server and two agents on loopback, connects them and moves data both ways.",
	examples: [2]string{
		"icetcp demo",
		"icetcp demo 2>&1 | tail -3",
	},
}

var labHelp = commandHelp{
	usage: "[--profiles P,...] [--relay embedded|coturn|off] [flags]   (root; a binary built with -tags lab)",
	what:  "Builds the namespace NAT lab and prints the connectivity matrix between NAT profiles.",
	examples: [2]string{
		"sudo ./icetcp lab --profiles full-cone,symmetric",
		"sudo ./icetcp lab --list",
	},
}

// helpFor is the help of a command by name, for `icetcp help NAME`.
func helpFor(name string) (commandHelp, bool) {
	h, ok := map[string]commandHelp{
		"serve": serveHelp, "connect": connectHelp, "send": sendHelp, "receive": receiveHelp,
		"natcheck": natcheckHelp, "secret": secretHelp, "token": tokenHelp, "demo": demoHelp, "lab": labHelp,
	}[name]
	return h, ok
}
