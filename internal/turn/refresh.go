package turn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/pion/stun/v4"
)

const (
	// permissionLifetime is fixed by RFC 8656 §9 (the server does not say).
	permissionLifetime = 300 * time.Second
	// permissionRefresh leaves a minute for the refresh to arrive.
	permissionRefresh = 240 * time.Second
	// minRefreshDelay keeps a server that grants absurdly short lifetimes
	// from making the client spin.
	minRefreshDelay = time.Second
)

// schedule says when the allocation and its permissions need refreshing.
// It is pure: the maintenance goroutine passes the time in.
type schedule struct {
	expiry    time.Time // the allocation expires unless refreshed
	nextAlloc time.Time // when to refresh it
	nextPerm  time.Time // when to refresh every permission
}

func newSchedule(now time.Time, lifetime time.Duration) schedule {
	s := schedule{nextPerm: now.Add(permissionRefresh)}
	s.refreshed(now, lifetime)
	return s
}

// refreshed records a LIFETIME granted at now. The next refresh is at half
// of it (RFC 8656 §8 leaves the margin to the client; half leaves as much
// time for a slow answer as it took to need one).
func (s *schedule) refreshed(now time.Time, lifetime time.Duration) {
	s.expiry = now.Add(lifetime)
	s.nextAlloc = now.Add(max(lifetime/2, minRefreshDelay))
}

// permissionsRefreshed moves the permission tick on. One tick every
// permissionRefresh refreshes every permission: one installed at any time
// between two ticks is refreshed at the next, at most permissionRefresh
// after it was installed, before its permissionLifetime ends.
func (s *schedule) permissionsRefreshed(now time.Time) {
	s.nextPerm = now.Add(permissionRefresh)
}

// next is when maintain must wake.
func (s schedule) next() time.Time {
	if s.nextPerm.Before(s.nextAlloc) {
		return s.nextPerm
	}
	return s.nextAlloc
}

// maintain refreshes the allocation and its permissions until the
// allocation ends. It is the allocation's second goroutine; it sends its
// requests over the control connection and run delivers the answers.
func (a *Allocation) maintain(lifetime time.Duration) {
	s := newSchedule(time.Now(), lifetime)
	t := time.NewTimer(time.Until(s.next()))
	defer t.Stop()
	for {
		select {
		case <-a.bg.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if !now.Before(s.nextAlloc) {
			life, err := a.refresh(s.expiry)
			if err != nil {
				a.fail(err)
				return
			}
			s.refreshed(time.Now(), life)
		}
		if !now.Before(s.nextPerm) {
			a.refreshPermissions(now.Add(permissionLifetime))
			s.permissionsRefreshed(now)
		}
		t.Reset(time.Until(s.next()))
	}
}

// refresh sends a Refresh request (RFC 8656 §8) and returns the granted
// lifetime. Over TCP the request is sent once; waiting for its answer until
// the allocation would expire is the retry. A nil *Error with a zero
// lifetime never happens: an error says the allocation is lost.
func (a *Allocation) refresh(expiry time.Time) (time.Duration, *Error) {
	ctx, cancel := context.WithDeadline(a.bg, expiry)
	defer cancel()
	resp, err := a.ctl.request(ctx, stun.MethodRefresh)
	lost := func(code int, reason string, err error) *Error {
		return &Error{Op: "refresh", Server: a.name, Code: code, Reason: reason, Err: err, lost: true}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return 0, lost(0, "", fmt.Errorf("no answer before the allocation expired at %s", expiry.Format(time.RFC3339)))
	case err != nil:
		return 0, lost(0, "", err)
	case resp.Type.Class == stun.ClassErrorResponse:
		code, reason := errorCode(resp)
		return 0, lost(code, reason, nil)
	}
	life, err := getLifetime(resp)
	if err != nil {
		return 0, lost(0, "", fmt.Errorf("Refresh response: %w", err))
	}
	if life == 0 {
		return 0, lost(0, "", errors.New("the server granted a zero lifetime"))
	}
	a.log.Debugf("%s: refreshed, lifetime %s", a.name, life)
	return life, nil
}

// refreshPermissions installs every permission again. Permissions the
// server refuses or does not confirm before they expire are forgotten, so
// that the next Permit installs them again; a 437 means the allocation is
// gone.
func (a *Allocation) refreshPermissions(deadline time.Time) {
	a.mu.Lock()
	ips := make([]netip.AddrPort, 0, len(a.permitted))
	for p := range a.permitted {
		ips = append(ips, p)
	}
	a.mu.Unlock()
	if len(ips) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(a.bg, deadline)
	defer cancel()
	for chunk := range slices.Chunk(ips, maxPeersPerRequest) {
		err := a.createPermission(ctx, "refresh permission", chunk)
		if err == nil {
			continue
		}
		var e *Error
		if errors.As(err, &e) && e.Code == int(stun.CodeAllocMismatch) {
			e.lost = true
			a.fail(e)
			return
		}
		if a.bg.Err() != nil {
			return
		}
		a.log.Warnf("%v; forgetting %v", err, chunk)
		a.mu.Lock()
		for _, ip := range chunk {
			delete(a.permitted, ip)
		}
		a.mu.Unlock()
	}
}
