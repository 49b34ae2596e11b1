package child

import (
	"bytes"
	"strings"
	"sync"
)

// Output collects a helper process's stdout and stderr while it runs: the
// process writes from its own goroutines, the test reads at any time.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Tail is the last n bytes written so far, trimmed: enough of a log for
// an error message.
func (o *Output) Tail(n int) string { return Tail(o.String(), n) }

// Tail is the last n bytes of log, trimmed.
func Tail(log string, n int) string {
	if len(log) > n {
		log = log[len(log)-n:]
	}
	return strings.TrimSpace(log)
}
