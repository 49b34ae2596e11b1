package limits

import (
	"sync"
	"time"
)

// DefaultLogWindow is how often a RefusalLog writes at most one line per
// reason.
const DefaultLogWindow = 10 * time.Second

// RefusalLog logs refusals at a bounded pace: the first refusal of a
// reason is logged at once with its detail; the ones that follow within
// the window are summed and logged as one line with their count when the
// window ends, and the window restarts while they keep coming. A flood of
// 10,000 connections thus costs a line or two, yet is never silent. It is
// safe for concurrent use; Close stops its timers.
type RefusalLog struct {
	logf   func(format string, args ...any)
	window time.Duration

	mu      sync.Mutex // guards following
	reasons map[string]*refusalWindow
	closed  bool
}

type refusalWindow struct {
	until   time.Time // refusals before this are summed, not logged
	pending uint64    // summed refusals not logged yet
	last    string    // the latest summed refusal's detail
	timer   *time.Timer
}

// NewRefusalLog logs through logf (a logger's Warnf or Infof) at most one
// line per reason per window; a window of zero or less is DefaultLogWindow.
func NewRefusalLog(logf func(format string, args ...any), window time.Duration) *RefusalLog {
	if window <= 0 {
		window = DefaultLogWindow
	}
	return &RefusalLog{logf: logf, window: window, reasons: make(map[string]*refusalWindow)}
}

// Note records one refusal; detail names the peer and the limit.
func (r *RefusalLog) Note(reason, detail string) {
	now := time.Now()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	w := r.reasons[reason]
	if w == nil {
		w = &refusalWindow{}
		r.reasons[reason] = w
	}
	if now.Before(w.until) {
		w.pending++
		w.last = detail
		r.mu.Unlock()
		return
	}
	// The window is over. Its timer may not have run yet (a busy host):
	// what it summed goes into this line, so a window never has two.
	summed := w.pending
	w.pending = 0
	w.until = now.Add(r.window)
	if w.timer == nil {
		w.timer = time.AfterFunc(r.window, func() { r.flush(reason) })
	} else {
		w.timer.Reset(r.window)
	}
	r.mu.Unlock()
	if summed > 0 {
		r.logf("refused (%s): %d more in the last %v; latest: %s", reason, summed+1, r.window, detail)
		return
	}
	r.logf("refused (%s): %s; further %s refusals are summed every %v", reason, detail, reason, r.window)
}

// flush ends a window: it logs the refusals summed in it and, if there
// were any, starts the next window so a continuing flood stays summed.
func (r *RefusalLog) flush(reason string) {
	now := time.Now()
	r.mu.Lock()
	w := r.reasons[reason]
	// Before the window's end: a run of the timer that a Note restarted
	// while this run was already on its way; the restarted one will come.
	if r.closed || w.pending == 0 || now.Before(w.until) {
		r.mu.Unlock()
		return
	}
	n, last := w.pending, w.last
	w.pending = 0
	w.until = now.Add(r.window)
	w.timer.Reset(r.window)
	r.mu.Unlock()
	r.logf("refused (%s): %d more in the last %v; latest: %s", reason, n, r.window, last)
}

// Close stops the timers and logs what is still summed. Later Notes are
// dropped.
func (r *RefusalLog) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	type line struct {
		reason, last string
		n            uint64
	}
	var lines []line
	for reason, w := range r.reasons {
		if w.timer != nil {
			w.timer.Stop()
		}
		if w.pending > 0 {
			lines = append(lines, line{reason, w.last, w.pending})
			w.pending = 0
		}
	}
	r.mu.Unlock()
	for _, l := range lines {
		r.logf("refused (%s): %d more before close; latest: %s", l.reason, l.n, l.last)
	}
}
