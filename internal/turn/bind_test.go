package turn

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// The ConnectionBind response is read exactly: however the server's bytes
// are cut into reads, and even when the peer's first bytes share a write
// with the response, the data connection starts with the peer's first
// byte. (pion/turn v5's BindConnection reads the 20-byte header with one
// Read and fails when it returns fewer; a client that read ahead into a
// buffer would swallow the peer's bytes.)
func TestConnectionBindReadsExactly(t *testing.T) {
	srv := newFakeServer(t, 600*time.Second)
	a, err := Allocate(testCtx(t), srv.config())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	key := stun.NewLongTermIntegrity(testUser, fakeRealm, testPassword)
	peerData := pattern(4096)
	const cid = 0xC0FFEE
	peer := netip.MustParseAddrPort("203.0.113.5:4000")

	for _, tc := range []struct {
		name string
		cuts func(resp []byte) [][]byte // how the server's bytes are written
	}{
		{"response and peer data in one write", func(r []byte) [][]byte {
			return [][]byte{append(append([]byte{}, r...), peerData...)}
		}},
		{"one byte at a time", func(r []byte) [][]byte {
			var w [][]byte
			for _, b := range append(append([]byte{}, r...), peerData[:64]...) {
				w = append(w, []byte{b})
			}
			return append(w, peerData[64:])
		}},
		{"header cut, body with the peer's first bytes", func(r []byte) [][]byte {
			return [][]byte{r[:7], r[7:23], append(append([]byte{}, r[23:]...), peerData[:100]...), peerData[100:]}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer server.Close()
			go func() {
				req, err := readMessage(server)
				if err != nil {
					t.Error(err)
					return
				}
				if id, err := getConnectionID(req); err != nil || id != cid || req.Type.Method != stun.MethodConnectionBind || key.Check(req) != nil {
					t.Errorf("request %v: CONNECTION-ID %#x (%v), integrity %v", req, id, err, key.Check(req))
				}
				resp := stun.MustBuild(stun.NewTransactionIDSetter(req.TransactionID),
					stun.NewType(stun.MethodConnectionBind, stun.ClassSuccessResponse), key, stun.Fingerprint)
				for _, w := range tc.cuts(resp.Raw) {
					if _, err := server.Write(w); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			conn, err := a.bind(testCtx(t), client, cid, peer)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if conn.RemoteAddr().String() != peer.String() {
				t.Errorf("RemoteAddr %v", conn.RemoteAddr())
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second)) // a swallowed byte fails, not hangs
			got := make([]byte, len(peerData))
			if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, peerData) {
				t.Fatalf("peer data: %v, intact %v", err, bytes.Equal(got, peerData))
			}
		})
	}
}
