package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// versionCmd prints the module version and the VCS revision the binary
// was built from, as the Go toolchain recorded them.
func versionCmd(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageErr("unexpected argument %q", args[0])
	}
	fmt.Fprintln(stdout, versionLine(debug.ReadBuildInfo()))
	return nil
}

// versionLine is "icetcp VERSION (REVISION[, modified] TIME) GO".
func versionLine(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "icetcp (no build information)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	line := "icetcp " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		line += " (" + rev + dirty
		if at != "" {
			line += " " + at
		}
		line += ")"
	}
	return line + " " + bi.GoVersion
}
