package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/secure"
)

// sendCmd sends files to one receiver: it makes a code, waits for the
// receiver in the code's room, and sends name, size and SHA-256, then the
// content from where the receiver is; it exits 0 once the receiver
// verified the whole content. A receiver that vanishes (killed, its path
// broken) is waited for again with the same code, and goes on from the
// bytes it has.
func sendCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f connectFlags
	f.register(fs)
	fs.Usage = commandUsage(fs, "send", sendHelp)
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.fromEnv()
	key, err := f.checkTransfer()
	if err != nil {
		return err
	}
	src, err := newSource(fs.Args())
	if err != nil {
		return err
	}
	ev := newEventWriter(stderr, f.jsonOut, f.trace)
	ev.quiet = f.quiet
	defer ev.close()
	// The content is hashed while the code is read out and the peer joins.
	hashCtx, stopHash := context.WithCancel(ctx)
	defer stopHash()
	hashed := make(chan error, 1)
	go func() { hashed <- src.hash(hashCtx, func(w string) { ev.warning(w) }) }()
	hashDone := false

	fresh := !key.withSecret
	if fresh {
		key.code, key.side = secure.NewCode(), secure.CodeMaker
	}
	announced := false
	joined := func(members int) error {
		switch {
		case fresh && !announced && members > 1:
			// Someone is in the room of a code nobody knows yet: another
			// pair's code with the same nameplate. Take another.
			return errCodeTaken
		case !announced && !key.withSecret:
			ev.code(key.code.String(), f.signal)
		}
		announced = true
		if members == 1 {
			if key.withSecret {
				ev.notice("waiting", "waiting for the receiver (it joins with the same --secret)")
			} else {
				ev.notice("waiting", fmt.Sprintf("waiting for the peer (share the code %s)", key.code))
			}
		}
		return nil
	}
	for tries := 0; ; {
		s, err := connectPeer(ctx, &f, key, ev, joined)
		if errors.Is(err, errCodeTaken) && tries < 5 {
			tries++
			key.code = secure.NewCode()
			continue
		}
		if err != nil {
			return ev.fail(f.jsonOut, err)
		}
		if !hashDone {
			if err := waitHash(ctx, hashed, ev); err != nil {
				s.abort()
				return ev.fail(f.jsonOut, err)
			}
			hashDone = true
		}
		err = sendOver(ctx, s, src, ev, &f)
		if err == nil {
			s.close()
			return nil
		}
		var v *vanishedError
		if errors.As(err, &v) && ctx.Err() == nil {
			s.close()
			ev.notice("waiting", fmt.Sprintf("the receiver vanished after %s (%v); waiting for it to come back: receive again with the same code", bytesText(v.at), v.err))
			continue
		}
		s.abort()
		return ev.fail(f.jsonOut, interrupted(ctx, err))
	}
}

var errCodeTaken = errors.New("the room of the new code is taken")

// waitHash waits for the content's hash, saying so when it is not ready.
func waitHash(ctx context.Context, hashed <-chan error, ev *eventWriter) error {
	select {
	case err := <-hashed:
		return err
	default:
	}
	ev.notice("hashing", "the peer is here; finishing the SHA-256 of the content first")
	select {
	case err := <-hashed:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// checkTransfer validates the flags send and receive share, before
// anything starts, and returns the secret's key when --secret is given.
func (f *connectFlags) checkTransfer() (peerKey, error) {
	var key peerKey
	if err := checkSignal(f.signal); err != nil {
		return key, err
	}
	if f.timeout <= 0 {
		return key, usageErr("--timeout must be positive")
	}
	secret, withSecret, err := f.parseSecret()
	if err != nil {
		return key, err
	}
	key.secret, key.withSecret = secret, withSecret
	if _, err := f.agentConfig(); err != nil {
		return key, err
	}
	if _, err := f.dialer(); err != nil {
		return key, err
	}
	return key, nil
}

// vanishedError is a receiver that went away without a word: killed, or
// its path broken. It may come back with the same code.
type vanishedError struct {
	at  int64 // content bytes it had (as far as we know)
	err error
}

func (e *vanishedError) Error() string {
	return fmt.Sprintf("the receiver vanished after %d bytes: %v", e.at, e.err)
}

func (e *vanishedError) Unwrap() error { return e.err }

// sendOver runs the transfer protocol (fileproto.go) as the sender.
func sendOver(ctx context.Context, s *session, src *source, ev *eventWriter, f *connectFlags) error {
	sc := s.sc
	if err := writeControl(sc, src.header); err != nil {
		return classifySend(err, 0)
	}
	b, err := readCtx(ctx, s, func() ([]byte, error) { return readControl(sc) })
	if err != nil {
		return classifySend(err, 0)
	}
	reply, err := decodeReply(b)
	if err != nil {
		return err
	}
	if reply.Refuse != "" {
		return fmt.Errorf("the receiver refused: %s", reply.Refuse)
	}
	if reply.Offset > src.header.Size {
		return fmt.Errorf("%w: the receiver asks for offset %d of %d bytes", errProtocol, reply.Offset, src.header.Size)
	}
	r, err := src.open(ctx, reply.Offset)
	if err != nil {
		return err
	}
	defer r.Close()
	m := newMeter(ev.w, ev, f.jsonOut, f.quiet, s.conn, src.header.Size, reply.Offset, false)
	// The verdict is read from the start: a receiver that stops says so
	// there, while our writes may only see a broken connection.
	verdict := make(chan error, 1)
	go func() {
		b, err := readControl(sc)
		if err == nil {
			var v fileVerdict
			if v, err = decodeVerdict(b); err == nil && !v.OK {
				err = fmt.Errorf("the receiver: %s", v.Error)
			}
		}
		verdict <- err
	}()
	copied := make(chan error, 1)
	go func() {
		_, err := copyCtx(ctx, countingWriter{sc, &m.sent}, r)
		if err == nil {
			err = sc.CloseWrite()
		}
		copied <- err
	}()
	var verr error
	select {
	case <-ctx.Done():
		m.finish()
		s.abort()
		<-copied
		return context.Cause(ctx)
	case err := <-copied:
		if err != nil {
			// The reader knows why: the receiver's words, or how its
			// side ended.
			select {
			case verr = <-verdict:
			case <-time.After(2 * time.Second):
				verr = err
			case <-ctx.Done():
				verr = context.Cause(ctx)
			}
			m.finish()
			return classifySend(verr, reply.Offset+m.sent.Load())
		}
	}
	select {
	case verr = <-verdict:
	case <-ctx.Done():
		m.finish()
		s.abort()
		return context.Cause(ctx)
	}
	took, rate := m.finish()
	if verr != nil {
		return classifySend(verr, reply.Offset+m.sent.Load())
	}
	ev.summary(summary{verb: "sent", what: src.header.displayName(), bytes: m.sent.Load(), total: src.header.Size, resumed: reply.Offset,
		sent: m.sent.Load(), took: took, rate: rate, path: m.pathText(), sha256: src.header.SHA256})
	return nil
}

// classifySend tells a receiver that vanished (it may come back) from one
// that stopped on purpose or refused.
func classifySend(err error, at int64) error {
	switch {
	case errors.Is(err, agent.ErrPeerInterrupted):
		return fmt.Errorf("interrupted by the peer after %s: %w", bytesText(at), err)
	case errors.Is(err, errProtocol), errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, secure.ErrTruncated), errors.Is(err, agent.ErrPeerVanished), errors.Is(err, agent.ErrConsentExpired),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, agent.ErrClosed):
		return &vanishedError{at: at, err: err}
	}
	var serr interface{ Timeout() bool }
	if errors.As(err, &serr) {
		return &vanishedError{at: at, err: err}
	}
	return err
}

// readCtx runs read, and aborts the session when ctx ends first.
func readCtx(ctx context.Context, s *session, read func() ([]byte, error)) ([]byte, error) {
	type res struct {
		b   []byte
		err error
	}
	done := make(chan res, 1)
	go func() {
		b, err := read()
		done <- res{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-ctx.Done():
		s.abort()
		<-done
		return nil, context.Cause(ctx)
	}
}

// displayName is what the summary calls the content.
func (h fileHeader) displayName() string {
	switch {
	case h.Name != "":
		return h.Name
	case len(h.Names) == 1:
		return h.Names[0]
	}
	return fmt.Sprintf("%d files and directories", len(h.Names))
}
