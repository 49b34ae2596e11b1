package secure

import (
	"context"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"

	"github.com/flynn/noise"
)

// fuzzKey keys the record fuzzer's cipher states.
var fuzzKey = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// recordStream is what a Conn keyed with fuzzKey writes for the given
// writes, with or without the end-of-stream record.
func recordStream(t testing.TB, writes []int, end bool) []byte {
	t.Helper()
	m := newMemConn(nil)
	c := newConn(m, true, noise.UnsafeNewCipherState(cipherSuite, fuzzKey, 0), nil)
	for _, n := range writes {
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if end {
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	return m.written.Bytes()
}

// FuzzRecord feeds arbitrary bytes to the record reader: it must end with
// io.EOF only after a genuine end-of-stream record, and otherwise with
// ErrRecord or ErrTruncated, never a panic.
func FuzzRecord(f *testing.F) {
	f.Add(recordStream(f, nil, true))
	f.Add(recordStream(f, []int{1, 100}, true))
	f.Add(recordStream(f, []int{MaxPayload + 1}, true))
	f.Add(recordStream(f, []int{5}, false))
	whole := recordStream(f, []int{3}, true)
	f.Add(whole[:len(whole)-1])
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := newConn(newMemConn(stream), false, nil, noise.UnsafeNewCipherState(cipherSuite, fuzzKey, 0))
		n, err := io.Copy(io.Discard, c)
		switch {
		case err == nil:
			if uint64(n) != c.Received() {
				t.Fatalf("clean end after %d bytes but %d received", n, c.Received())
			}
		case errors.Is(err, ErrRecord), errors.Is(err, ErrTruncated):
		default:
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}

// transcript runs a real handshake between a client and a server whose
// randomness comes from fixed seeds, plus one data record and the end, and
// returns what each side sent.
func transcript(t testing.TB, clientSeed, serverSeed uint64) (fromClient, fromServer []byte) {
	t.Helper()
	a, b := net.Pipe()
	ra, rb := &recordingConn{Conn: a}, &recordingConn{Conn: b}
	s := testSecret(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := Server(context.Background(), rb, s, Config{Rand: seeded(serverSeed)})
		if err == nil {
			io.Copy(io.Discard, c)
			sendAll(c, []byte("reply"))
		}
	}()
	c, err := Client(context.Background(), ra, s, Config{Rand: seeded(clientSeed)})
	if err != nil {
		t.Fatal(err)
	}
	sendAll(c, []byte("hello"))
	io.Copy(io.Discard, c)
	wg.Wait()
	a.Close()
	b.Close()
	return ra.out, rb.out
}

func seeded(seed uint64) io.Reader { return rand.NewChaCha8([32]byte{byte(seed)}) }

type recordingConn struct {
	net.Conn
	out []byte
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.out = append(r.out, p...)
	return r.Conn.Write(p)
}

// handshakeErr accepts the error kinds a handshake may end with.
func handshakeErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrHandshake) && !errors.Is(err, ErrWrongSecret) && !errors.Is(err, ErrNotSecure) {
		t.Fatalf("unexpected handshake error kind: %v", err)
	}
}

// FuzzHandshakeHello is the responder reading whatever arrives: a hello,
// the key confirmation and records after them. Its randomness is fixed, so
// the seed transcript is a valid client and the fuzzer starts past the
// handshake.
func FuzzHandshakeHello(f *testing.F) {
	fromClient, _ := transcript(f, 1, 2)
	f.Add(fromClient)
	f.Add(fromClient[:66])
	f.Add([]byte(handshakeMagic))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Server(context.Background(), newMemConn(in), testSecret(t), Config{Rand: seeded(2)})
		if err != nil {
			handshakeErr(t, err)
			return
		}
		io.Copy(io.Discard, c) // past the handshake: the record reader's turn
	})
}

// FuzzHandshakeReply is the initiator reading the responder's answer.
func FuzzHandshakeReply(f *testing.F) {
	_, fromServer := transcript(f, 1, 2)
	f.Add(fromServer)
	f.Add(fromServer[:60])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Client(context.Background(), newMemConn(in), testSecret(t), Config{Rand: seeded(1)})
		if err != nil {
			handshakeErr(t, err)
			return
		}
		io.Copy(io.Discard, c)
	})
}

// FuzzParseCode: whatever is typed, ParseCode neither panics nor accepts
// anything that does not print back as a code it parses to again.
func FuzzParseCode(f *testing.F) {
	f.Add("7-acid-canal-ozone")
	f.Add(" 7 Acid canal.OZONE ")
	f.Add("7-acid-canl-ozone")
	f.Add("999-zoom-zoom-zoom-zoom")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCode) {
				t.Fatalf("ParseCode(%q): %v, want ErrInvalidCode", s, err)
			}
			return
		}
		again, err := ParseCode(c.String())
		if err != nil || again != c || !c.Valid() {
			t.Fatalf("ParseCode(%q) = %q, which parses to %v, %v", s, c, again, err)
		}
	})
}

// FuzzDecodePoint: a key share decodes only to a point on P-256, and the
// PAKE library never sees anything else.
func FuzzDecodePoint(f *testing.F) {
	g := encodePoint(elliptic.P256().Params().Gx, elliptic.P256().Params().Gy)
	f.Add(base64.RawURLEncoding.EncodeToString(g))
	f.Add(base64.RawURLEncoding.EncodeToString(make([]byte, p256PointLen)))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		x, y, err := decodePoint(s)
		if err != nil {
			if !errors.Is(err, ErrUnconfirmed) {
				t.Fatalf("decodePoint(%q): %v, want ErrUnconfirmed", s, err)
			}
			return
		}
		if !elliptic.P256().IsOnCurve(x, y) {
			t.Fatalf("decodePoint(%q) = a point off the curve", s)
		}
		p, err := newPake(make([]byte, 32), 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := update(p, 1, x, y); err != nil {
			t.Fatalf("update with a valid point: %v", err)
		}
	})
}
