package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/icetcp/icetcp/agent"
	"github.com/icetcp/icetcp/secure"
)

// receiveCmd receives what send sends, with the code it printed: it checks
// the name it is sent, writes to a partial file beside the destination
// (so that a second run with the same code and -o resumes from it),
// verifies the whole content's SHA-256 and only then gives it its name.
func receiveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("receive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f connectFlags
	f.register(fs)
	out := fs.String("o", "", "write to `PATH` (a directory: into it, under the sent name); default: the sent name in the current directory")
	force := fs.Bool("force", false, "replace an existing file (or what a directory transfer brings)")
	fs.Usage = commandUsage(fs, "receive", receiveHelp)
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.fromEnv()
	key, err := f.checkTransfer()
	if err != nil {
		return err
	}
	switch {
	case key.withSecret && fs.NArg() > 0:
		return usageErr("a code and --secret exclude each other")
	case !key.withSecret && fs.NArg() != 1:
		return usageErr("want the code the sender printed (like 7-purple-canal-ozone), or --secret")
	case !key.withSecret:
		if key.code, err = secure.ParseCode(fs.Arg(0)); err != nil {
			return usageErr("%v", err)
		}
		key.side = secure.CodeTaker
	}
	dest := receiveDest{out: *out, force: *force}
	if err := dest.check(); err != nil {
		return err
	}
	ev := newEventWriter(stderr, f.jsonOut, f.trace)
	ev.quiet = f.quiet
	defer ev.close()
	joined := func(members int) error {
		if members == 1 {
			ev.notice("waiting", "waiting for the sender (nobody is in the room of this code yet: is the code right, and is send running?)")
		}
		return nil
	}
	s, err := connectPeer(ctx, &f, key, ev, joined)
	if err != nil {
		return ev.fail(f.jsonOut, err)
	}
	if err := receiveOver(ctx, s, dest, ev, &f); err != nil {
		s.abort()
		return ev.fail(f.jsonOut, interrupted(ctx, err))
	}
	s.close()
	return nil
}

// receiveDest is where received content goes.
type receiveDest struct {
	out   string // -o
	force bool
}

// check refuses an -o whose directory does not exist, before anything
// starts.
func (d receiveDest) check() error {
	if d.out == "" {
		return nil
	}
	if fi, err := os.Stat(d.out); err == nil && fi.IsDir() {
		return nil
	}
	if _, err := os.Stat(filepath.Dir(d.out)); err != nil {
		return usageErr("-o %s: %v", d.out, err)
	}
	return nil
}

// resolve says where content of header h goes: the final path (a file, or
// the directory a tar is extracted into) and the partial file that
// collects the bytes until they are verified.
func (d receiveDest) resolve(h fileHeader) (final, partial string, err error) {
	dir := "."
	if h.Kind == kindFile {
		final = h.Name // checked by decodeHeader: a plain name
		if d.out != "" {
			final = d.out
			if fi, err := os.Stat(d.out); err == nil && fi.IsDir() {
				final = filepath.Join(d.out, h.Name)
			}
		}
		dir = filepath.Dir(final)
		if fi, err := os.Lstat(final); err == nil && (!d.force || !fi.Mode().IsRegular()) {
			return "", "", fmt.Errorf("%w: %s exists (pass --force to replace it, or -o to choose another path)", errExists, final)
		}
	} else {
		if d.out != "" {
			dir = d.out
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return "", "", err
			}
		}
		final = dir
		if !d.force {
			for _, n := range h.Names {
				if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
					return "", "", fmt.Errorf("%w: %s exists (pass --force to replace what the transfer brings, or -o DIR)", errExists, filepath.Join(dir, n))
				}
			}
		}
	}
	// One partial file per content: a resume continues only the bytes of
	// the same content.
	partial = filepath.Join(dir, fmt.Sprintf(".%s.icetcp-%s.part", h.displayName(), h.SHA256[:16]))
	return final, partial, nil
}

// receiveOver runs the transfer protocol (fileproto.go) as the receiver.
func receiveOver(ctx context.Context, s *session, dest receiveDest, ev *eventWriter, f *connectFlags) error {
	sc := s.sc
	b, err := readCtx(ctx, s, func() ([]byte, error) { return readControl(sc) })
	if err != nil {
		return err
	}
	h, err := decodeHeader(b)
	if err != nil {
		return err
	}
	final, partial, err := dest.resolve(h)
	if err != nil {
		// The sender is told why, and stops.
		if werr := writeControl(sc, fileReply{Refuse: err.Error()}); werr == nil {
			sc.CloseWrite()
		}
		return err
	}
	file, offset, sum, err := openPartial(partial, h.Size)
	if err != nil {
		writeControl(sc, fileReply{Refuse: "the receiver cannot write: " + err.Error()})
		sc.CloseWrite()
		return err
	}
	defer file.Close()
	if offset > 0 {
		ev.notice("resume", fmt.Sprintf("resuming at %s of %s (%s)", bytesText(offset), bytesText(h.Size), partial))
	}
	if err := writeControl(sc, fileReply{Offset: offset}); err != nil {
		return err
	}
	m := newMeter(ev.w, ev, f.jsonOut, f.quiet, s.conn, h.Size, offset, true)
	copied := make(chan error, 1)
	go func() {
		n, err := pipeCopy(ctx, file, sum, countingReader{io.LimitReader(sc, h.Size-offset), &m.recv})
		if err == nil && n != h.Size-offset {
			err = fmt.Errorf("the stream ended after %s of %s", bytesText(offset+n), bytesText(h.Size))
		}
		if err == nil {
			// The sender's end of stream follows the content, nothing else.
			var one [1]byte
			if k, rerr := sc.Read(one[:]); k > 0 || !errors.Is(rerr, io.EOF) {
				err = fmt.Errorf("%w: more than the announced %d bytes, or no end of stream (%v)", errProtocol, h.Size, rerr)
			}
		}
		copied <- err
	}()
	select {
	case <-ctx.Done():
		m.finish()
		s.abort()
		<-copied
		return context.Cause(ctx)
	case err = <-copied:
	}
	took, rate := m.finish()
	if err != nil {
		return receiveErr(err, offset+m.recv.Load()) // what arrived stays, for a resume
	}
	// No fsync, like cp and croc: the kernel has the bytes, a killed
	// receiver does not lose them, and waiting for the disk would add
	// seconds per GiB to every transfer.
	got := hex.EncodeToString(sum.Sum(nil))
	if got != h.SHA256 {
		file.Close()
		os.Remove(partial) // the bytes on disk are not the content: a resume would only repeat this
		writeControl(sc, fileVerdict{Error: "SHA-256 mismatch: the content changed while it was sent, or the partial file was altered"})
		sc.CloseWrite()
		return fmt.Errorf("SHA-256 mismatch: got %s, the sender announced %s; the partial file is removed, receive again for a fresh copy", got, h.SHA256)
	}
	if err := finishReceive(h, file, partial, final, dest.force); err != nil {
		writeControl(sc, fileVerdict{Error: "the receiver could not store it: " + err.Error()})
		sc.CloseWrite()
		return err
	}
	if err := writeControl(sc, fileVerdict{OK: true}); err == nil {
		sc.CloseWrite()
	}
	ev.summary(summary{verb: "received", what: final, bytes: m.recv.Load(), total: h.Size, resumed: offset,
		recv: m.recv.Load(), took: took, rate: rate, path: m.pathText(), sha256: h.SHA256})
	return nil
}

// pipeCopy copies r to file and sum until EOF, reading (and so
// decrypting) on one goroutine while the other hashes and writes: on a
// host with two cores that is what keeps the receiver from being the
// slower end.
func pipeCopy(ctx context.Context, file io.Writer, sum hash.Hash, r io.Reader) (int64, error) {
	const depth = 4
	free := make(chan []byte, depth)
	for range depth {
		free <- make([]byte, copyBuf)
	}
	full := make(chan []byte, depth)
	werr := make(chan error, 1)
	go func() {
		var err error
		for b := range full {
			if err == nil {
				sum.Write(b)
				_, err = file.Write(b)
			}
			free <- b[:cap(b)]
		}
		werr <- err
	}()
	var n int64
	var rerr error
	for {
		if err := ctx.Err(); err != nil {
			rerr = context.Cause(ctx)
			break
		}
		b := <-free
		k, err := io.ReadFull(r, b)
		if k > 0 {
			n += int64(k)
			full <- b[:k]
		} else {
			free <- b
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	close(full)
	if err := <-werr; rerr == nil {
		rerr = err
	}
	return n, rerr
}

// openPartial opens (or creates) the partial file and hashes what it
// holds: the transfer resumes after it.
func openPartial(name string, size int64) (*os.File, int64, hash.Hash, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() > size {
		err = f.Truncate(0)
	}
	sum := sha256.New()
	var n int64
	if err == nil {
		n, err = copyCtx(context.Background(), sum, io.LimitReader(f, size))
	}
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	return f, n, sum, nil
}

// finishReceive gives verified content its place: a file is renamed, a
// tar is extracted.
func finishReceive(h fileHeader, file *os.File, partial, final string, force bool) error {
	if h.Kind == kindFile {
		if err := file.Chmod(os.FileMode(h.Mode&0o777) | 0o600); err != nil {
			return err
		}
		file.Close()
		return os.Rename(partial, final)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := extractTar(file, final, h.Names, force); err != nil {
		return err
	}
	file.Close()
	return os.Remove(partial)
}

// receiveErr words how the stream from the sender ended early.
func receiveErr(err error, at int64) error {
	switch {
	case errors.Is(err, errProtocol):
		return err
	case errors.Is(err, agent.ErrPeerInterrupted):
		return fmt.Errorf("interrupted by the peer after %s (%s on disk; receive again with the same code to resume): %w", bytesText(at), bytesText(at), err)
	}
	return fmt.Errorf("%w (%s on disk; receive again with the same code to resume)", err, bytesText(at))
}
