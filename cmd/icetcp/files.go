package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// source is what send sends: one regular file as it is, or directories
// and files as one tar stream.
type source struct {
	header fileHeader
	file   string   // kindFile: the file
	paths  []string // kindTar: the paths given, each a top-level name
}

// newSource checks the paths send was given and says what will go; the
// size and hash of a tar stream come with hash.
func newSource(paths []string) (*source, error) {
	if len(paths) == 0 {
		return nil, usageErr("nothing to send: give files or directories")
	}
	s := &source{header: fileHeader{V: fileProtoVersion}}
	seen := map[string]string{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil, usageErr("%s is neither a file nor a directory", p)
		}
		name := filepath.Base(filepath.Clean(p))
		if err := checkName(name); err != nil {
			return nil, usageErr("%s: %v", p, err)
		}
		if other, ok := seen[name]; ok {
			return nil, usageErr("%s and %s would both arrive as %q", other, p, name)
		}
		seen[name] = p
	}
	if fi, _ := os.Stat(paths[0]); len(paths) == 1 && fi.Mode().IsRegular() {
		s.file = paths[0]
		s.header.Kind, s.header.Name, s.header.Size = kindFile, filepath.Base(filepath.Clean(paths[0])), fi.Size()
		s.header.Mode = uint32(fi.Mode().Perm())
		return s, nil
	}
	s.paths = paths
	s.header.Kind = kindTar
	for _, p := range paths {
		s.header.Names = append(s.header.Names, filepath.Base(filepath.Clean(p)))
	}
	if len(paths) == 1 {
		s.header.Name = s.header.Names[0]
	}
	return s, nil
}

// hash reads the content once for its size and SHA-256 (send runs it
// while the code is read out and the peer joins). warn hears of what a
// tar leaves out.
func (s *source) hash(ctx context.Context, warn func(string)) error {
	h := sha256.New()
	var n int64
	var err error
	if s.header.Kind == kindFile {
		var f *os.File
		if f, err = os.Open(s.file); err != nil {
			return err
		}
		defer f.Close()
		n, err = copyCtx(ctx, h, f)
		if err == nil && n != s.header.Size {
			err = fmt.Errorf("%s changed while it was read (%d bytes, then %d)", s.file, s.header.Size, n)
		}
	} else {
		cw := &countWriter{w: h}
		err = writeTar(ctx, cw, s.paths, warn)
		n = cw.n
	}
	if err != nil {
		return err
	}
	s.header.Size, s.header.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	return nil
}

// open returns the content from offset on.
func (s *source) open(ctx context.Context, offset int64) (io.ReadCloser, error) {
	if s.header.Kind == kindFile {
		f, err := os.Open(s.file)
		if err != nil {
			return nil, err
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
		return f, nil
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(ctx, pw, s.paths, func(string) {})) }()
	if _, err := io.CopyN(io.Discard, pr, offset); err != nil {
		pr.Close()
		return nil, fmt.Errorf("skipping the %d bytes the receiver has: %w", offset, err)
	}
	return pr, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// copyBuf is the buffer size of file copies: large enough that a fast
// path is not held back by the syscalls of small reads.
const copyBuf = 1 << 20

// copyCtx copies until EOF or ctx ends.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, copyBuf)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, context.Cause(ctx)
		}
		k, err := r.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// writeTar writes the tar stream of paths: directories and regular files,
// each under its path's base name, in lexical order, with permission bits
// and modification time only, so that two runs over unchanged files give
// the same bytes (send reads it twice: for the hash, then to send it).
// Symbolic links and special files are left out, with a warning.
func writeTar(ctx context.Context, w io.Writer, paths []string, warn func(string)) error {
	tw := tar.NewWriter(w)
	buf := make([]byte, copyBuf)
	for _, root := range paths {
		root = filepath.Clean(root)
		top := filepath.Base(root)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return context.Cause(ctx)
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			name := path.Join(top, filepath.ToSlash(rel))
			fi, err := d.Info()
			if err != nil {
				return err
			}
			hdr := &tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime().Truncate(1e9), Format: tar.FormatPAX}
			switch {
			case fi.IsDir():
				hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
				return tw.WriteHeader(hdr)
			case fi.Mode().IsRegular():
				hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
			default:
				warn(fmt.Sprintf("%s left out: not a regular file or a directory", p))
				return nil
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := io.CopyBuffer(tw, io.LimitReader(f, hdr.Size), buf)
			if err == nil && n != hdr.Size {
				err = fmt.Errorf("%s shrank while it was read", p)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// extractTar unpacks a verified tar stream into dir, through an os.Root
// so that nothing lands outside it (not through a symbolic link either).
// Every entry must lie under one of names, which must not exist unless
// force.
func extractTar(r io.Reader, dir string, names []string, force bool) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	allowed := map[string]bool{}
	for _, n := range names {
		if _, err := root.Lstat(n); err == nil && !force {
			return fmt.Errorf("%w: %s exists (--force replaces what the transfer brings)", errExists, filepath.Join(dir, n))
		}
		allowed[n] = true
	}
	tr := tar.NewReader(r)
	buf := make([]byte, copyBuf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the tar stream: %w", err)
		}
		name := path.Clean(strings.TrimSuffix(hdr.Name, "/"))
		top, _, _ := strings.Cut(name, "/")
		if !filepath.IsLocal(filepath.FromSlash(name)) || !allowed[top] {
			return fmt.Errorf("%w: tar entry %q is outside what was announced", errProtocol, cutText(hdr.Name))
		}
		local := filepath.FromSlash(name)
		perm := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(local, perm|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if d := filepath.Dir(local); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return err
				}
			}
			f, err := root.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm|0o600)
			if err != nil {
				return err
			}
			_, err = io.CopyBuffer(f, tr, buf)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: tar entry %q of type %q (only files and directories are sent)", errProtocol, cutText(hdr.Name), hdr.Typeflag)
		}
	}
}

var errExists = errors.New("refusing to overwrite")
