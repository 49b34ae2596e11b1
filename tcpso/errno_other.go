//go:build !unix && !windows

package tcpso

// classifyErrno knows no errno values here; timeouts are still recognised
// by classify.
func classifyErrno(error) (Outcome, bool) { return 0, false }
