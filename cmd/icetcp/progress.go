package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/icetcp/icetcp/agent"
)

// A small renderer rather than a progress-bar library: the line has to
// show the path and its round trip beside bytes, rate and ETA, the same
// numbers go out as JSON progress events and into the summary, and it
// must stay off when stderr is not a terminal; that is a hundred lines
// over golang.org/x/term (which only tells a terminal), where
// schollz/progressbar/v3 would bring its own counters, options and three
// more modules to hide.

// meter counts what a transfer moved and shows it on stderr.
type meter struct {
	total int64 // bytes expected in the main direction; -1: unknown
	base  int64 // bytes of the main direction already there (a resume)
	sent  atomic.Int64
	recv  atomic.Int64
	main  *atomic.Int64 // sent or recv: the direction total counts
	start time.Time

	w     io.Writer
	tty   bool // draw the progress line
	ev    *eventWriter
	json  bool
	conn  *agent.Conn
	stop  chan struct{}
	ended chan struct{}
	once  sync.Once

	mu      sync.Mutex // guards following
	path    string
	rtt     time.Duration
	samples []sample // recent (time, bytes) for the rate
}

type sample struct {
	at time.Time
	n  int64
}

// progressEvery is how often the terminal line is redrawn; JSON progress
// events go out every jsonEvery.
const (
	progressEvery = 250 * time.Millisecond
	jsonEvery     = time.Second
	rateWindow    = 3 * time.Second
)

// newMeter starts showing progress: a line on a terminal (not with
// quiet), JSON events with jsonOut. receiving says which direction total
// counts.
func newMeter(stderr io.Writer, ev *eventWriter, jsonOut, quiet bool, conn *agent.Conn, total, base int64, receiving bool) *meter {
	now := time.Now()
	m := &meter{total: total, base: base, start: now, w: stderr, ev: ev, json: jsonOut, conn: conn,
		stop: make(chan struct{}), ended: make(chan struct{}),
		samples: []sample{{at: now}}} // the first redraw has a rate, not "0 B/s"

	m.main = &m.sent
	if receiving {
		m.main = &m.recv
	}
	if f, ok := stderr.(*os.File); ok && !quiet && !jsonOut {
		m.tty = term.IsTerminal(int(f.Fd()))
	}
	if conn != nil {
		m.path = conn.Path()
	}
	go m.run()
	return m
}

func (m *meter) run() {
	defer close(m.ended)
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	lastJSON, lastStats := time.Now(), time.Time{}
	for {
		select {
		case <-m.stop:
			return
		case now := <-tick.C:
			if m.conn != nil && now.Sub(lastStats) >= time.Second {
				lastStats = now
				if st := m.conn.Agent().Stats(); st.Selected != nil {
					m.mu.Lock()
					m.rtt = st.Selected.RTT
					m.mu.Unlock()
				}
			}
			m.sample(now)
			if m.tty {
				fmt.Fprintf(m.w, "\r%s\x1b[K", m.line(now))
			}
			if m.json && now.Sub(lastJSON) >= jsonEvery {
				lastJSON = now
				m.ev.emit(m.event("progress", now))
			}
		}
	}
}

func (m *meter) sample(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples, sample{now, m.sent.Load() + m.recv.Load()})
	for len(m.samples) > 2 && now.Sub(m.samples[0].at) > rateWindow {
		m.samples = m.samples[1:]
	}
}

// rate is bytes per second over the recent window (both directions).
func (m *meter) rate() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.samples) < 2 {
		return 0
	}
	a, b := m.samples[0], m.samples[len(m.samples)-1]
	if d := b.at.Sub(a.at).Seconds(); d > 0 {
		return float64(b.n-a.n) / d
	}
	return 0
}

// line is the progress line.
func (m *meter) line(now time.Time) string {
	rate := m.rate()
	done := m.base + m.main.Load()
	var s string
	if m.total >= 0 {
		pct := 100.0
		if m.total > 0 {
			pct = 100 * float64(done) / float64(m.total)
		}
		s = fmt.Sprintf("%5.1f%% %s / %s  %s", pct, bytesText(done), bytesText(m.total), rateText(rate))
		if rate > 0 && done < m.total {
			s += "  ETA " + durText(time.Duration(float64(m.total-done)/rate*float64(time.Second)))
		}
	} else {
		s = fmt.Sprintf("sent %s  received %s  %s", bytesText(m.sent.Load()), bytesText(m.recv.Load()), rateText(rate))
	}
	m.mu.Lock()
	path, rtt := m.path, m.rtt
	m.mu.Unlock()
	if path != "" {
		s += "  " + path
		if rtt > 0 {
			s += fmt.Sprintf(", RTT %s", rttText(rtt))
		}
	}
	return s
}

func (m *meter) event(kind string, now time.Time) map[string]any {
	v := map[string]any{"event": kind, "sent": m.sent.Load(), "received": m.recv.Load(), "bytes_per_s": int64(m.rate())}
	if m.total >= 0 {
		done := m.base + m.main.Load()
		v["bytes"], v["total"] = done, m.total
		if r := m.rate(); r > 0 && done < m.total {
			v["eta_s"] = float64(m.total-done) / r
		}
	}
	v["elapsed_s"] = now.Sub(m.start).Seconds()
	return v
}

// finish stops the line (clearing it) and returns the average rate of the
// run in bytes per second, with its duration.
func (m *meter) finish() (time.Duration, float64) {
	m.once.Do(func() { close(m.stop) })
	<-m.ended
	if m.tty {
		fmt.Fprint(m.w, "\r\x1b[K")
	}
	took := time.Since(m.start)
	n := m.sent.Load() + m.recv.Load()
	return took, float64(n) / max(took.Seconds(), 1e-9)
}

// pathText is "direct, RTT 0.3 ms" for the summary.
func (m *meter) pathText() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn != nil {
		if st := m.conn.Agent().Stats(); st.Selected != nil && st.Selected.RTT > 0 {
			m.rtt = st.Selected.RTT
		}
	}
	if m.path == "" {
		return ""
	}
	if m.rtt > 0 {
		return fmt.Sprintf("%s, RTT %s", m.path, rttText(m.rtt))
	}
	return m.path
}

// countingWriter counts what passes into n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// countingReader counts what passes into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for x := n / unit; x >= unit; x /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func rateText(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f GB/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.1f MB/s", bps/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.1f kB/s", bps/1e3)
	}
	return fmt.Sprintf("%.0f B/s", bps)
}

func durText(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Minute {
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	if d < time.Hour {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func rttText(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}
