package secure

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestTransferBothWays(t *testing.T) {
	client, server := securePair(t)
	if !client.Initiator() || server.Initiator() {
		t.Fatal("roles")
	}
	for _, size := range []int{0, 1, MaxPayload, MaxPayload + 1, 8 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c, s := securePair(t)
			up, down := randomBytes(size), randomBytes(size/2)
			errs := make(chan error, 4)
			type got struct {
				sum [32]byte
				n   int64
				err error
			}
			gotS, gotC := make(chan got, 1), make(chan got, 1)
			go func() { errs <- sendAll(c, up) }()
			go func() { errs <- sendAll(s, down) }()
			go func() { h, n, err := recvAll(s); gotS <- got{h, n, err} }()
			go func() { h, n, err := recvAll(c); gotC <- got{h, n, err} }()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if g := <-gotS; g.err != nil || g.sum != sha256.Sum256(up) || g.n != int64(size) {
				t.Fatalf("server got %d bytes, %v; digest match %v", g.n, g.err, g.sum == sha256.Sum256(up))
			}
			if g := <-gotC; g.err != nil || g.sum != sha256.Sum256(down) {
				t.Fatalf("client got %d bytes, %v", g.n, g.err)
			}
			// io.EOF is sticky.
			if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("Read after end: %d, %v", n, err)
			}
		})
	}
	client.Close()
	server.Close()
}

// Each side ends its sending half while the other keeps talking.
func TestHalfCloseBothWays(t *testing.T) {
	c, s := securePair(t)
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("second CloseWrite: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrWriteClosed) {
		t.Fatalf("Write after CloseWrite: %v", err)
	}
	if b, err := io.ReadAll(s); err != nil || len(b) != 0 {
		t.Fatalf("server read %q, %v; want a clean empty stream", b, err)
	}
	// The server still sends after the client's end, and the client reads it.
	msg := []byte("still talking after your end of stream")
	go sendAll(s, msg)
	if b, err := io.ReadAll(c); err != nil || string(b) != string(msg) {
		t.Fatalf("client read %q, %v", b, err)
	}
}

// A peer that vanishes without its end-of-stream record is never a clean
// end: the reader learns how many bytes arrived.
func TestTruncatedStream(t *testing.T) {
	for _, how := range []string{"close", "reset"} {
		t.Run(how, func(t *testing.T) {
			a, b := tcpPair(t)
			s := testSecret(t)
			cr, sr := handshakePair(t, a, b, s, s, Config{})
			if cr.err != nil || sr.err != nil {
				t.Fatal(cr.err, sr.err)
			}
			const sent = 100_000
			if _, err := cr.c.Write(randomBytes(sent)); err != nil {
				t.Fatal(err)
			}
			if how == "reset" {
				a.SetLinger(0) // close sends RST
			}
			a.Close() // no CloseWrite: as if the process were killed
			n, err := io.Copy(io.Discard, sr.c)
			var te *TruncatedError
			if !errors.Is(err, ErrTruncated) || !errors.As(err, &te) {
				t.Fatalf("read %d bytes then %v; want ErrTruncated", n, err)
			}
			// With a reset the kernel may drop what had not been read yet;
			// whatever arrived is counted exactly.
			if te.Received != uint64(n) || (how == "close" && n != sent) {
				t.Fatalf("Received %d, read %d, sent %d", te.Received, n, sent)
			}
			if want := fmt.Sprintf("peer vanished after %d bytes", n); !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not say %q", err, want)
			}
			if _, again := sr.c.Read(make([]byte, 1)); again != err {
				t.Fatalf("error not sticky: %v", again)
			}
		})
	}
}

// Whoever sits on the path cannot change, drop or reorder bytes without
// the reader noticing, and cannot fake the end.
func TestTamperedStream(t *testing.T) {
	// The server's inbound stream: the client's handshake message (16+2+48
	// bytes), the ready record (2+1+16), then data records of 2+1+1000+16.
	const first = 66 + 19
	const rec = 1019
	tests := []struct {
		name             string
		flip             int64
		dropFrom, dropTo int64
	}{
		{name: "flip a header byte of the first data record", flip: first},
		{name: "flip a ciphertext bit", flip: first + 500},
		{name: "flip the tag", flip: first + rec - 1},
		{name: "drop a whole record", flip: -1, dropFrom: first, dropTo: first + rec},
		{name: "drop the second record and the end", flip: -1, dropFrom: first + rec, dropTo: 1 << 40},
		{name: "drop only the end-of-stream record", flip: -1, dropFrom: first + 3*rec, dropTo: 1 << 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tcpPair(t)
			tb := &tamperConn{Conn: b, flip: tt.flip, dropFrom: tt.dropFrom, dropTo: tt.dropTo}
			s := testSecret(t)
			cr, sr := handshakePair(t, a, tb, s, s, Config{})
			if cr.err != nil || sr.err != nil {
				t.Fatal(cr.err, sr.err)
			}
			go func() {
				for range 3 {
					cr.c.Write(randomBytes(1000)) // one record each
				}
				cr.c.CloseWrite()
				if tt.dropTo > first+3*rec {
					a.Close() // the far end of a dropped tail: the transport ends
				}
			}()
			n, err := io.Copy(io.Discard, sr.c)
			if err == nil {
				t.Fatalf("tampered stream read cleanly (%d bytes)", n)
			}
			if !errors.Is(err, ErrRecord) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("error %v: want ErrRecord or ErrTruncated", err)
			}
			if n > 3000 {
				t.Fatalf("%d bytes passed despite tampering", n)
			}
			a.Close()
		})
	}
}

func TestWrongSecret(t *testing.T) {
	a, b := tcpPair(t)
	cr, sr := handshakePair(t, a, b, testSecret(t), NewSecret(), Config{})
	if !errors.Is(sr.err, ErrWrongSecret) {
		t.Fatalf("server: %v, want ErrWrongSecret", sr.err)
	}
	if !errors.Is(cr.err, ErrHandshake) || !strings.Contains(cr.err.Error(), "different secret") {
		t.Fatalf("client: %v, want ErrHandshake naming a different secret", cr.err)
	}
}

// A peer that does not speak the protocol (icetcp connect without --secret
// writes its stdin at once) gets a clear error on either role.
func TestPlainPeer(t *testing.T) {
	for _, initiator := range []bool{true, false} {
		t.Run(fmt.Sprint("initiator=", initiator), func(t *testing.T) {
			a, b := tcpPair(t)
			go b.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
			ctx := context.Background()
			var err error
			if initiator {
				_, err = Client(ctx, a, testSecret(t), Config{})
			} else {
				_, err = Server(ctx, a, testSecret(t), Config{})
			}
			if !errors.Is(err, ErrNotSecure) || !strings.Contains(err.Error(), "GET / ") {
				t.Fatalf("%v: want ErrNotSecure quoting what the peer sent", err)
			}
		})
	}
}

// A silent peer cannot hold the handshake open past its timeout, and a
// cancelled context ends it at once. Pipes use timers synctest controls.
func TestHandshakeTimeoutAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		_, err := Server(context.Background(), a, testSecret(t), Config{HandshakeTimeout: 3 * time.Second})
		if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "no answer within 3s") {
			t.Fatalf("%v: want a handshake timeout", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		_, err := Server(ctx, a, testSecret(t), Config{})
		if !errors.Is(err, ErrHandshake) || !errors.Is(err, context.Canceled) {
			t.Fatalf("%v: want a cancelled handshake", err)
		}
	})
}

// A read deadline in the middle of a record does not lose the record.
func TestReadDeadlineMidRecord(t *testing.T) {
	a, b := tcpPair(t)
	// The server's stream: 66 bytes of handshake, 19 of ready, then our record.
	sb := &stallConn{Conn: b, after: 66 + 19 + 7}
	s := testSecret(t)
	cr, sr := handshakePair(t, a, sb, s, s, Config{})
	if cr.err != nil || sr.err != nil {
		t.Fatal(cr.err, sr.err)
	}
	go sendAll(cr.c, []byte("one record, interrupted"))
	buf := make([]byte, 100)
	if _, err := sr.c.Read(buf); !isTimeout(err) {
		t.Fatalf("first Read: %v, want the timeout", err)
	}
	b2, err := io.ReadAll(sr.c)
	if err != nil || string(b2) != "one record, interrupted" {
		t.Fatalf("after the timeout: %q, %v", b2, err)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	c, s := securePair(t)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 10))
		errc <- err
	}()
	s.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after local Close: %v, want net.ErrClosed", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	c.Close()
}
