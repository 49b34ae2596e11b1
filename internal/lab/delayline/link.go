package delayline

import (
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"syscall"
	"time"
)

// link is one attached endpoint: a reader goroutine feeding the line, and
// a queue plus writer goroutine draining into the endpoint.
type link struct {
	line *Line
	name string
	ep   Endpoint
	wake chan struct{} // capacity 1: "the queue head changed"
	done chan struct{} // closed by Line.Close

	// mu guards the fields below. Held only for queue operations, never
	// across I/O.
	mu   sync.Mutex
	lc   LinkConfig
	rng  *rand.Rand
	q    pktHeap
	seq  uint64
	last int64 // due time of the last queued packet, for FIFO order

	stats linkCounters
}

func newLink(l *Line, name string, ep Endpoint, lc LinkConfig, seed uint64) *link {
	return &link{
		line: l, name: name, ep: ep, lc: lc,
		rng:  rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
}

// readBufSize is the largest IPv4 packet; a TUN read truncates silently
// into a smaller buffer.
const readBufSize = 65535

func (lk *link) readLoop() {
	scratch := make([]byte, readBufSize)
	for {
		n, err := lk.ep.Read(scratch)
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
				continue
			}
			// Closed (normal shutdown) or the device vanished: nothing
			// more will come from this endpoint.
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) {
				lk.stats.readErrors.Add(1)
			}
			return
		}
		if n == 0 {
			continue
		}
		lk.stats.rxPackets.Add(1)
		lk.stats.rxBytes.Add(uint64(n))
		lk.line.forward(newPacket(scratch[:n]))
	}
}

// enqueue schedules p for delivery into this link.
func (lk *link) enqueue(p packet) {
	now := lk.line.now()
	lk.mu.Lock()
	lc := lk.lc
	if lc.Loss > 0 && lk.rng.Float64() < lc.Loss {
		lk.mu.Unlock()
		lk.stats.lost.Add(1)
		p.release()
		return
	}
	if len(lk.q) >= lk.line.cfg.QueueLimit {
		lk.mu.Unlock()
		lk.stats.queueDrops.Add(1)
		p.release()
		return
	}
	due := now + int64(lc.Delay)
	if lc.Jitter > 0 {
		due += lk.rng.Int64N(int64(lc.Jitter) + 1)
	}
	if !lc.Reorder && due < lk.last {
		due = lk.last // keep FIFO: never leave before a predecessor
	}
	lk.last = max(lk.last, due)
	p.due, p.seq = due, lk.seq
	lk.seq++
	lk.q.push(p)
	isHead := lk.q[0].seq == p.seq
	lk.mu.Unlock()
	if isHead {
		select {
		case lk.wake <- struct{}{}:
		default:
		}
	}
}

func (lk *link) writeLoop() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var batch []packet
	for {
		now := lk.line.now()
		wait := time.Duration(-1)
		batch = batch[:0]
		lk.mu.Lock()
		for len(lk.q) > 0 && lk.q[0].due <= now {
			batch = append(batch, lk.q.pop())
		}
		if len(lk.q) > 0 {
			wait = time.Duration(lk.q[0].due - now)
		}
		lk.mu.Unlock()

		for i, p := range batch {
			if _, err := lk.ep.Write(p.bytes()); err != nil {
				lk.stats.writeErrors.Add(1)
			} else {
				lk.stats.txPackets.Add(1)
				lk.stats.txBytes.Add(uint64(p.n))
			}
			p.release()
			batch[i] = packet{}
		}
		if len(batch) > 0 {
			// Writing took time; look again before sleeping.
			select {
			case <-lk.done:
				return
			default:
				continue
			}
		}
		if wait < 0 {
			select {
			case <-lk.wake:
			case <-lk.done:
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-lk.wake:
			timer.Stop()
		case <-lk.done:
			return
		}
	}
}

// drain releases queued packets after the goroutines stopped.
func (lk *link) drain() {
	lk.mu.Lock()
	defer lk.mu.Unlock()
	for len(lk.q) > 0 {
		p := lk.q.pop()
		p.release()
	}
}
