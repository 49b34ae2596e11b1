package delayline

import "sync"

// poolBufSize covers a 1500-byte MTU with room to spare; larger packets
// (a TUN with a jumbo MTU) get their own allocation.
const poolBufSize = 2048

var bufPool = sync.Pool{New: func() any { b := make([]byte, poolBufSize); return &b }}

// packet is a queued IP packet and its schedule.
type packet struct {
	buf    *[]byte // pooled when cap == poolBufSize
	n      int
	due    int64
	seq    uint64
	pooled bool
}

// newPacket copies b, so the reader can reuse its scratch buffer.
func newPacket(b []byte) packet {
	if len(b) <= poolBufSize {
		buf := bufPool.Get().(*[]byte)
		copy(*buf, b)
		return packet{buf: buf, n: len(b), pooled: true}
	}
	c := append([]byte(nil), b...)
	return packet{buf: &c, n: len(b)}
}

func (p packet) bytes() []byte { return (*p.buf)[:p.n] }

func (p packet) release() {
	if p.pooled {
		bufPool.Put(p.buf)
	}
}

// pktHeap is a binary min-heap on (due, seq). Written out rather than via
// container/heap to avoid boxing every packet in an interface.
type pktHeap []packet

func (h pktHeap) less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].seq < h[j].seq
}

func (h *pktHeap) push(p packet) {
	*h = append(*h, p)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (h *pktHeap) pop() packet {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q[last] = packet{}
	q = q[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(q) && q.less(l, m) {
			m = l
		}
		if r < len(q) && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}
