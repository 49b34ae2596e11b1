package main

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The transfer protocol of send and receive, inside the secure stream
// (package secure), after the code exchange:
//
//	sender   → receiver  header  {"v":1,"kind":"file"|"tar","name":…,"size":…,"sha256":…,"names":[…]}
//	receiver → sender    reply   {"offset":N} or {"refuse":"reason"}
//	sender   → receiver  size−N bytes of content, then end of stream
//	receiver → sender    verdict {"ok":true} or {"error":"reason"}, then end of stream
//
// Each message is a 2-byte big-endian length and a JSON object of at most
// maxControl bytes. A "file" is the bytes of one file, stored under name;
// a "tar" is a tar stream (archive/tar) of the directories and files whose
// top-level names are listed in names, extracted once verified. size and
// sha256 are the content's; the receiver resumes at offset N with the
// bytes it has, and checks the SHA-256 of the whole content.

const (
	fileProtoVersion = 1
	maxControl       = 16 << 10
	maxNameLen       = 255
	maxNames         = 1024
	kindFile         = "file"
	kindTar          = "tar"
)

// fileHeader is what the sender announces.
type fileHeader struct {
	V      int      `json:"v"`
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	Size   int64    `json:"size"`
	SHA256 string   `json:"sha256"`
	Names  []string `json:"names,omitempty"` // a tar's top-level names
	Mode   uint32   `json:"mode,omitempty"`  // a file's permission bits
}

// fileReply is the receiver's answer to the header.
type fileReply struct {
	Offset int64  `json:"offset"`
	Refuse string `json:"refuse,omitempty"`
}

// fileVerdict is the receiver's last word.
type fileVerdict struct {
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
}

var errProtocol = errors.New("transfer protocol")

func writeControl(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxControl {
		return fmt.Errorf("%w: a %d-byte message, limit %d", errProtocol, len(b), maxControl)
	}
	msg := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b)))
	_, err = w.Write(append(msg, b...))
	return err
}

// readControl reads one message's bytes.
func readControl(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint16(n[:]))
	if l > maxControl {
		return nil, fmt.Errorf("%w: a %d-byte message, limit %d", errProtocol, l, maxControl)
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// decodeHeader parses and checks a header: a known version and kind, a
// size that is not negative, a SHA-256 in hex, names that are plain file
// names (checkName).
func decodeHeader(b []byte) (fileHeader, error) {
	var h fileHeader
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("%w: header: %w", errProtocol, err)
	}
	if h.V != fileProtoVersion {
		return h, fmt.Errorf("%w: header version %d, this side speaks %d (update icetcp on one side)", errProtocol, h.V, fileProtoVersion)
	}
	if h.Size < 0 {
		return h, fmt.Errorf("%w: header: size %d", errProtocol, h.Size)
	}
	if sum, err := hex.DecodeString(h.SHA256); err != nil || len(sum) != 32 || hex.EncodeToString(sum) != h.SHA256 {
		return h, fmt.Errorf("%w: header: sha256 %q is not 64 lowercase hex digits", errProtocol, cutText(h.SHA256))
	}
	if h.Mode&^0o777 != 0 {
		return h, fmt.Errorf("%w: header: mode %o has bits beyond 0777", errProtocol, h.Mode)
	}
	switch h.Kind {
	case kindFile:
		if len(h.Names) > 0 {
			return h, fmt.Errorf("%w: header: a file with names", errProtocol)
		}
		if err := checkName(h.Name); err != nil {
			return h, err
		}
	case kindTar:
		if len(h.Names) == 0 || len(h.Names) > maxNames {
			return h, fmt.Errorf("%w: header: a tar with %d names (1-%d)", errProtocol, len(h.Names), maxNames)
		}
		seen := map[string]bool{}
		for _, n := range h.Names {
			if err := checkName(n); err != nil {
				return h, err
			}
			if seen[n] {
				return h, fmt.Errorf("%w: header: name %q twice", errProtocol, n)
			}
			seen[n] = true
		}
		if h.Name != "" {
			if err := checkName(h.Name); err != nil {
				return h, err
			}
		}
	default:
		return h, fmt.Errorf("%w: header: kind %q", errProtocol, cutText(h.Kind))
	}
	return h, nil
}

// checkName accepts a plain file name: one path element, not . or ..,
// without separators, control characters or invalid UTF-8, at most
// maxNameLen bytes. What a sender names is written only under such a name,
// so it cannot reach outside the receiver's directory.
func checkName(n string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: file name %q %s", errProtocol, cutText(n), why)
	}
	switch {
	case n == "" || n == "." || n == "..":
		return bad("is not a file name")
	case len(n) > maxNameLen:
		return bad(fmt.Sprintf("is longer than %d bytes", maxNameLen))
	case !utf8.ValidString(n):
		return bad("is not UTF-8")
	case strings.ContainsAny(n, `/\:`):
		return bad("has a path separator")
	}
	for _, r := range n {
		if unicode.IsControl(r) {
			return bad("has a control character")
		}
	}
	return nil
}

func decodeReply(b []byte) (fileReply, error) {
	var r fileReply
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: reply: %w", errProtocol, err)
	}
	if r.Offset < 0 {
		return r, fmt.Errorf("%w: reply: offset %d", errProtocol, r.Offset)
	}
	return r, nil
}

func decodeVerdict(b []byte) (fileVerdict, error) {
	var v fileVerdict
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("%w: verdict: %w", errProtocol, err)
	}
	if v.OK == (v.Error != "") {
		return v, fmt.Errorf("%w: verdict neither ok nor an error", errProtocol)
	}
	return v, nil
}

func cutText(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
