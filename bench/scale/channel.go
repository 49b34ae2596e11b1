package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/signaling"
)

// pipeChannel is one session's signaling.Channel over the pipe.
type pipeChannel struct {
	p    *pipe
	s    int
	in   chan []byte
	done chan struct{}
	once sync.Once
}

func (c *pipeChannel) Send(ctx context.Context, m signaling.Message) error {
	b, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
		return signaling.ErrClosed
	default:
	}
	return c.p.write(msg{S: c.s, M: b})
}

func (c *pipeChannel) Recv(ctx context.Context) (signaling.Message, error) {
	select {
	case b := <-c.in:
		return signaling.Decode(b)
	case <-c.done:
		return signaling.Message{}, signaling.ErrClosed
	case <-ctx.Done():
		return signaling.Message{}, ctx.Err()
	}
}

func (c *pipeChannel) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

// child runs the client agents: on "start N P" it connects N active-only
// agents to the parent's sessions, P at a time, and holds them until
// "stop".
func child(stdin io.Reader, stdout io.Writer) error {
	p := newPipe(0, stdout, stdin)
	go p.read()
	word := <-p.ctlCh
	var n, parallel int
	if _, err := fmt.Sscanf(word, "start %d %d", &n, &parallel); err != nil {
		return fmt.Errorf("bad start %q: %w", word, err)
	}
	agents := make([]*agent.Agent, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		a, err := agent.New(agent.Config{Addrs: []netip.Addr{clientAddr(i)}, DisablePassive: true, DisableSO: true,
			Role: agent.RoleControlling, ConnectTimeout: time.Minute, LoggerFactory: quiet(), Session: withSession})
		if err != nil {
			return err
		}
		agents[i] = a
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			a.Connect(ctx, p.channel(i)) // the parent counts failures
		}()
	}
	wg.Wait()
	p.forgetChannels()
	for w := range p.ctlCh {
		if strings.HasPrefix(w, "stop") {
			break
		}
	}
	for _, a := range agents {
		a.Close()
	}
	return nil
}

// clientAddr spreads clients over 127.0.0.0/8 the way real clients come
// from many addresses (and so that no single source hits a per-source cap).
func clientAddr(i int) netip.Addr {
	return netip.MustParseAddr("127.1." + strconv.Itoa(i/250) + "." + strconv.Itoa(1+i%250))
}
