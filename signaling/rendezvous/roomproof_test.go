package rendezvous

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"

	"github.com/coder/websocket"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawJoin joins room on a new connection with the given proof, as any
// WebSocket client can, and returns the connection's challenge and the
// server's answer.
func rawJoin(t *testing.T, url, room string, proof func(challenge []byte) string) (challenge []byte, answer signaling.Control) {
	t.Helper()
	ws, resp, err := websocket.Dial(testCtx(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	challenge, err = signaling.DecodeChallenge(resp.Header.Get(signaling.ChallengeHeader))
	if err != nil {
		t.Fatal(err)
	}
	join := signaling.Control{Type: signaling.TypeJoin, Room: room}
	if proof != nil {
		join.Proof = proof(challenge)
	}
	if err := ws.Write(testCtx(t), websocket.MessageText, signaling.EncodeControl(join)); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if answer, err = signaling.DecodeControl(b); err != nil {
		t.Fatal(err)
	}
	return challenge, answer
}

// Issue 14, finding 8, at the rendezvous: whoever learned a secret's room
// could join it first and be paired with the first real peer. A key room
// is joined only with a proof over the connection's own challenge: a
// squatter without the key, with another key, or with a proof captured on
// another connection is refused, the room is not even opened for it, and
// the holders of the key meet.
func TestKeyRoomTakesAProof(t *testing.T) {
	checkGoroutines(t)
	srv := &Server{}
	url := startServer(t, srv)
	key := newKey(t)
	room := signaling.RoomForKey(key.Public().(ed25519.PublicKey))

	// Squatters, before the real pair.
	if _, err := wsclient.Dial(testCtx(t), url, room); !errors.Is(err, signaling.ErrRoomProof) {
		t.Fatalf("a join without a proof: %v, want ErrRoomProof", err)
	}
	other := newKey(t)
	if _, ans := rawJoin(t, url, room, func(c []byte) string { return signaling.ProveJoin(other, room, c) }); ans.Code != signaling.CodeRoomProof {
		t.Fatalf("a proof with another key answered %+v", ans)
	}
	var captured string
	first, ans := rawJoin(t, url, room, func(c []byte) string { captured = signaling.ProveJoin(key, room, c); return captured })
	if ans.Type != signaling.TypeJoined {
		t.Fatalf("a good proof answered %+v", ans)
	}
	second, ans := rawJoin(t, url, room, func([]byte) string { return captured })
	if string(first) == string(second) || ans.Code != signaling.CodeRoomProof {
		t.Fatalf("a proof captured on another connection answered %+v (challenges equal: %v)", ans, string(first) == string(second))
	}
	if _, ans := rawJoin(t, url, "keyring."+room[len(signaling.KeyRoomPrefix):], nil); ans.Type != signaling.TypeJoined {
		t.Fatalf("a plain room is joined as before: %+v", ans)
	}
	if _, ans := rawJoin(t, url, signaling.KeyRoomPrefix+"notakey", nil); ans.Code != signaling.CodeRoomProof {
		t.Fatalf("a key-room name that names no key answered %+v", ans)
	}
	if st := srv.Stats(); st.Refused[ReasonRoomProof] != 4 {
		t.Fatalf("stats %+v: want 4 room-proof refusals", st)
	}
	waitFor(t, func() bool { return srv.Stats().Rooms == 0 }) // the good raw join and the plain one left

	// The holders of the key meet.
	d := &wsclient.Dialer{RoomKey: key}
	a, err := d.Dial(testCtx(t), url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := d.Dial(testCtx(t), url, room)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := signaling.Message{V: 1, Type: signaling.TypeCandidate, Candidate: testCand}
	if err := a.Send(testCtx(t), want); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, b); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	if _, err := d.Dial(testCtx(t), url, "another-room"); !errors.Is(err, signaling.ErrRoomProof) {
		t.Fatalf("RoomKey with another room's name: %v", err)
	}
}
