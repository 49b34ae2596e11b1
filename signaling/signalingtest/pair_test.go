package signalingtest

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/icetcp/icetcp/signaling"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestPairExchange(t *testing.T) {
	a, b := Pair()
	defer a.Close()
	defer b.Close()
	msgs := []signaling.Message{
		{Type: signaling.TypeCredentials, Ufrag: "abcd", Pwd: "0123456789abcdefghijkl", Tiebreaker: 9},
		{Type: signaling.TypeCandidate, Candidate: "candidate:1 1 TCP 1 127.0.0.1 9 typ host tcptype active"},
		{Type: signaling.TypeEndOfCandidates},
		{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: 2, Phase: signaling.PunchGo, DelayMs: 5}},
		{Type: signaling.TypeBye},
	}
	for _, m := range msgs { // never blocks: nobody is receiving yet
		if err := a.Send(ctx(t), m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range msgs {
		got, err := b.Recv(ctx(t))
		want.V = signaling.Version
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v %v, want %+v", got, err, want)
		}
	}
	if err := b.Send(ctx(t), signaling.Message{Type: signaling.TypeCandidate, Candidate: "a\nb"}); !errors.Is(err, signaling.ErrInvalidMessage) {
		t.Fatalf("invalid Send: %v", err)
	}
	if err := b.Send(ctx(t), signaling.Message{Type: signaling.TypePeerLeft}); !errors.Is(err, signaling.ErrRendezvousOnly) {
		t.Fatalf("peer-left Send: %v", err)
	}
}

func TestPairClose(t *testing.T) {
	a, b := Pair()
	if err := a.Send(ctx(t), signaling.Message{Type: signaling.TypeBye}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { // a blocked Recv on the closing side is released
		_, err := a.Recv(context.Background())
		done <- err
	}()
	a.Close()
	if err := <-done; !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("Recv on closed end: %v", err)
	}
	if err := a.Send(ctx(t), signaling.Message{Type: signaling.TypeBye}); !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("Send on closed end: %v", err)
	}
	// The other end: pending message, then peer-left once, then a final error.
	if m, err := b.Recv(ctx(t)); err != nil || m.Type != signaling.TypeBye {
		t.Fatalf("got %+v %v", m, err)
	}
	if m, err := b.Recv(ctx(t)); err != nil || m.Type != signaling.TypePeerLeft {
		t.Fatalf("got %+v %v", m, err)
	}
	_, err := b.Recv(ctx(t))
	if !errors.Is(err, signaling.ErrPeerLeft) || !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("after peer-left: %v", err)
	}
	if err := b.Send(ctx(t), signaling.Message{Type: signaling.TypeBye}); !errors.Is(err, signaling.ErrPeerLeft) {
		t.Fatalf("Send to a closed peer: %v", err)
	}
	b.Close()
	b.Close()
}

func TestPairRecvContext(t *testing.T) {
	a, b := Pair()
	defer a.Close()
	defer b.Close()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.Recv(c); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv: %v", err)
	}
}

func TestPairRaw(t *testing.T) {
	a, b := NewPair()
	defer a.Close()
	defer b.Close()
	for _, tt := range []struct {
		raw    string
		target error
	}{
		{`{"v":2,"type":"bye"}`, signaling.ErrVersion},
		{`{"v":1,"type":"credentials","ufrag":"ab"}`, signaling.ErrInvalidMessage},
		{`not json`, signaling.ErrInvalidMessage},
	} {
		if err := a.SendRaw(ctx(t), []byte(tt.raw)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Recv(ctx(t)); !errors.Is(err, tt.target) {
			t.Fatalf("Recv of %s: %v, want %v", tt.raw, err, tt.target)
		}
	}
	// The channel stays usable.
	if err := a.SendRaw(ctx(t), []byte(`{"v":1,"type":"end-of-candidates","new-field":true}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := b.Recv(ctx(t)); err != nil || m.Type != signaling.TypeEndOfCandidates {
		t.Fatalf("got %+v %v", m, err)
	}
}

func TestPairConcurrent(t *testing.T) {
	before := runtime.NumGoroutine()
	a, b := Pair()
	const n = 1000
	errc := make(chan error, 4)
	for _, pair := range [][2]signaling.Channel{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		go func() {
			for i := 0; i < n; i++ {
				if err := from.Send(ctx(t), signaling.Message{Type: signaling.TypePunch, Punch: &signaling.Punch{Seq: uint32(i), Phase: signaling.PunchPing}}); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		go func() {
			for i := 0; i < n; i++ {
				m, err := to.Recv(ctx(t))
				if err != nil || m.Punch.Seq != uint32(i) {
					errc <- errors.Join(err, errors.New("out of order"))
					return
				}
			}
			errc <- nil
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	b.Close()
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
		}
	}
}
