//go:build linux

package natlab

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// noiseHost is the LAN address of a noisy profile's other host: 10.0.<n>.9.
func noiseHost(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(n), 9}) }

// noiseTarget is where the background connections go: a port of the
// server nobody listens on, so each is one SYN and one RST, and leaves no
// socket behind on either side.
var noiseTarget = netip.AddrPortFrom(ServerAddr, 9)

// noise is the background traffic of a noisy profile: a host on the
// gateway's LAN opening a connection to noiseTarget every interval on
// average (exponentially distributed gaps, as independent users'
// connections are), until stop.
type noise struct {
	// dialed gets a value (when it has room) after each connection's
	// attempt ended: a test waits for n of them by n receives.
	dialed chan struct{}
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// startNoise builds the noise host behind gateway gw (LAN n, veth tag)
// and starts its connections.
func (b *builder) startNoise(gw Host, n int, tag string, every time.Duration) error {
	h := Host{Name: "noise-" + tag, NS: b.lab.Prefix + "-n" + tag, Addr: noiseHost(n), Public: gw.Public}
	if err := b.lanHost(h, gw.NS, netip.AddrFrom4([4]byte{10, 0, byte(n), 1}), "n"+tag); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	nz := &noise{cancel: cancel, dialed: make(chan struct{}, 1)}
	b.lab.mu.Lock()
	b.lab.noise = append(b.lab.noise, nz)
	b.lab.mu.Unlock()
	nz.done.Go(func() {
		for {
			t := time.NewTimer(time.Duration(rand.ExpFloat64() * float64(every)))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			dctx, dcancel := context.WithTimeout(ctx, time.Second)
			if c, err := b.lab.Dial(dctx, h, 0, noiseTarget); err == nil {
				c.Close() // nobody should listen there; do not hold it anyway
			}
			dcancel()
			select {
			case nz.dialed <- struct{}{}:
			default:
			}
		}
	})
	return nil
}

// stopNoise ends every noise generator and waits for them.
func (l *Lab) stopNoise() {
	l.mu.Lock()
	nzs := l.noise
	l.noise = nil
	l.mu.Unlock()
	for _, nz := range nzs {
		nz.cancel()
		nz.done.Wait()
	}
}
