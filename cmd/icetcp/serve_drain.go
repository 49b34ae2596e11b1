package main

import (
	"errors"
	"net"
	"strconv"
	"time"
)

// drainPoll is how often a drain looks whether rooms and relayed sessions
// are done.
const drainPoll = 250 * time.Millisecond

// drainAndClose is serve's graceful shutdown (SIGTERM): the node stops
// taking connections at once (the rendezvous, STUN and TURN listeners
// close, /readyz answers 503), members that joined keep their rooms until
// their signaling is done, relayed connections keep flowing, and when both
// are over, or after d, everything closes. Allocations without a relayed
// connection do not hold the drain: a new peer connection to them could no
// longer be bound (the TURN port is closed).
func (s *server) drainAndClose(d time.Duration) error {
	s.draining.Store(true)
	var errs []error
	if d > 0 {
		errs = append(errs, s.sig.Drain())
		for _, l := range s.stunLns {
			if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		start := time.Now()
		s.say.say("draining: no new connections; waiting up to %v for %s", d, s.pending())
		t := time.NewTicker(drainPoll)
		for s.busy() && time.Since(start) < d {
			<-t.C
		}
		t.Stop()
		if s.busy() {
			s.say.say("drain period over after %v: closing %s", time.Since(start).Round(time.Millisecond), s.pending())
		} else {
			s.say.say("drained in %v", time.Since(start).Round(time.Millisecond))
		}
	}
	return errors.Join(append(errs, s.Close())...)
}

// busy reports rooms with members here or relayed connections.
func (s *server) busy() bool {
	rooms, relayed := s.load()
	return rooms > 0 || relayed > 0
}

func (s *server) load() (rooms int, relayed int64) {
	rooms = s.sig.Stats().Rooms
	if s.relay != nil {
		relayed = s.relay.Stats().Relayed
	}
	return rooms, relayed
}

func (s *server) pending() string {
	rooms, relayed := s.load()
	return plural(rooms, "room") + " and " + plural(int(relayed), "relayed connection")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
