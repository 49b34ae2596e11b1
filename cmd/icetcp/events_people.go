package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/icetcp/icetcp/agent"
)

// Events of send and receive, and the summaries every command ends with.
// Human lines are written unless --quiet (the summary always is); with
// --json each is an event.

// notice is a line for people: what the program waits for, what it does
// next.
func (e *eventWriter) notice(kind, msg string) {
	if e.json {
		e.emit(map[string]any{"event": kind, "message": msg})
		return
	}
	if !e.quiet {
		e.emit(map[string]any{"event": "line", "line": "icetcp: " + msg})
	}
}

// code announces the code the sender made.
func (e *eventWriter) code(code, signal string) {
	if e.json {
		e.emit(map[string]any{"event": "code", "code": code})
		return
	}
	// The code is the command's output: printed even with --quiet.
	e.emit(map[string]any{"event": "line", "line": fmt.Sprintf("icetcp: code %s\n  on the other side: icetcp receive --signal %s %s", code, signal, code)})
}

// summary is the one line every run ends with.
type summary struct {
	verb    string // "sent", "received", "copied"
	what    string // a name, or ""
	bytes   int64  // moved in this run
	total   int64  // the content's size; -1 when none
	resumed int64  // bytes that were there before (a resume)
	sent    int64  // connect: each direction
	recv    int64
	took    time.Duration
	rate    float64
	path    string
	sha256  string // verified content hash, if any
	// paths are the session's paths in order (connect): where the bytes
	// went, and what the relay carried after a direct pair validated.
	paths []agent.PathStats
}

func (e *eventWriter) summary(s summary) {
	if e.json {
		v := map[string]any{"event": "done", "sent": s.sent, "received": s.recv, "seconds": s.took.Seconds(), "bytes_per_s": int64(s.rate)}
		if s.path != "" {
			v["path"] = s.path
		}
		if s.what != "" {
			v["name"] = s.what
		}
		if s.total >= 0 {
			v["size"] = s.total
		}
		if s.resumed > 0 {
			v["resumed_at"] = s.resumed
		}
		if s.sha256 != "" {
			v["sha256"], v["verified"] = s.sha256, true
		}
		if len(s.paths) > 0 {
			var paths []map[string]any
			for _, p := range s.paths {
				pv := map[string]any{"path": p.Path, "bytes": p.BytesSent + p.BytesReceived}
				if p.Path == "relay" {
					pv["after_direct"] = p.AfterDirect
				}
				paths = append(paths, pv)
			}
			v["paths"] = paths
		}
		e.emit(v)
		return
	}
	var b strings.Builder
	b.WriteString("icetcp: " + s.verb)
	if s.what != "" {
		fmt.Fprintf(&b, " %s", s.what)
	}
	if s.total >= 0 {
		fmt.Fprintf(&b, " (%s)", bytesText(s.total))
		if s.resumed > 0 {
			fmt.Fprintf(&b, ", %s of it this time (resumed at %s)", bytesText(s.bytes), bytesText(s.resumed))
		}
	} else {
		fmt.Fprintf(&b, " %s, received %s", bytesText(s.sent), bytesText(s.recv))
	}
	fmt.Fprintf(&b, " in %s, %s", s.took.Round(time.Millisecond), rateText(s.rate))
	if s.path != "" {
		fmt.Fprintf(&b, ", %s", s.path)
	}
	if s.sha256 != "" {
		fmt.Fprintf(&b, "; SHA-256 verified")
	}
	e.emit(map[string]any{"event": "line", "line": b.String()})
}
