package interop

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/icetcp/icetcp/agent"
)

// TestWriteRightAfterSelection: icetcp controlled, libnice controlling; the
// application writes as soon as Connect returns. The controlled agent
// selects on libnice's USE-CANDIDATE request and answers it from a
// goroutine, so the application's first frame can reach libnice before
// that answer. libnice must receive exactly the application's bytes.
func TestWriteRightAfterSelection(t *testing.T) {
	for range 3 {
		p := StartLibnice(t, Options{Controlling: true})
		s := newAgent(t, agent.Config{})
		conn := s.connect(t, p)
		want := []byte("hello")
		if _, err := conn.Write(want); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := p.WaitReceived(ctx, len(want))
		cancel()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("libnice received %q (%v), want %q", got, err, want)
		}
		p.Stop()
	}
}
