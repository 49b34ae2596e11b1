package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/pion/logging"
)

// Log formats of serve (--log-format).
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

// serveLogger is the LoggerFactory of serve's servers for a log format:
// text is pion's line format (quietLogger); json writes one object a line
// ({"time":…,"level":"WARN","scope":"icetcp-relay","msg":…}), for a log
// pipeline. Warnings and errors by default; ICETCP_LOG=debug|info|warn
// changes the level in both.
func serveLogger(w io.Writer, format string) logging.LoggerFactory {
	if format != logFormatJSON {
		return quietLogger(w, false)
	}
	level := slog.LevelWarn
	switch os.Getenv("ICETCP_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	}
	return jsonLoggers{h: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})}
}

// jsonLoggers makes pion LeveledLoggers that write through slog's JSON
// handler (one Write per record, safe for concurrent use).
type jsonLoggers struct{ h slog.Handler }

func (f jsonLoggers) NewLogger(scope string) logging.LeveledLogger {
	return jsonLogger{l: slog.New(f.h).With("scope", scope)}
}

// jsonLogger is a pion LeveledLogger over slog; trace is debug.
type jsonLogger struct{ l *slog.Logger }

func (j jsonLogger) log(level slog.Level, msg string) {
	if j.l.Enabled(context.Background(), level) {
		j.l.Log(context.Background(), level, msg)
	}
}

func (j jsonLogger) logf(level slog.Level, format string, args ...any) {
	if j.l.Enabled(context.Background(), level) {
		j.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (j jsonLogger) Trace(msg string)                  { j.log(slog.LevelDebug, msg) }
func (j jsonLogger) Tracef(format string, args ...any) { j.logf(slog.LevelDebug, format, args...) }
func (j jsonLogger) Debug(msg string)                  { j.log(slog.LevelDebug, msg) }
func (j jsonLogger) Debugf(format string, args ...any) { j.logf(slog.LevelDebug, format, args...) }
func (j jsonLogger) Info(msg string)                   { j.log(slog.LevelInfo, msg) }
func (j jsonLogger) Infof(format string, args ...any)  { j.logf(slog.LevelInfo, format, args...) }
func (j jsonLogger) Warn(msg string)                   { j.log(slog.LevelWarn, msg) }
func (j jsonLogger) Warnf(format string, args ...any)  { j.logf(slog.LevelWarn, format, args...) }
func (j jsonLogger) Error(msg string)                  { j.log(slog.LevelError, msg) }
func (j jsonLogger) Errorf(format string, args ...any) { j.logf(slog.LevelError, format, args...) }

// announcer writes serve's own lines (where it listens, that it is ready,
// that it drains): as they are in text, as info records of scope
// "icetcp-serve" in JSON, whatever the level.
type announcer struct {
	w    io.Writer
	json *slog.Logger // nil: text
}

func newAnnouncer(w io.Writer, format string) *announcer {
	a := &announcer{w: w}
	if format == logFormatJSON {
		a.json = slog.New(slog.NewJSONHandler(w, nil)).With("scope", "icetcp-serve")
	}
	return a
}

func (a *announcer) say(format string, args ...any) {
	if a.json != nil {
		a.json.Info(fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(a.w, "icetcp serve: "+format+"\n", args...)
}
