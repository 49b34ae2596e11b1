package signaling

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/coder/websocket"
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
func rawJoin(t *testing.T, url, room string, proof func(challenge []byte) string) (challenge []byte, answer Control) {
	t.Helper()
	ws, resp, err := websocket.Dial(testCtx(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	challenge, err = DecodeChallenge(resp.Header.Get(ChallengeHeader))
	if err != nil {
		t.Fatal(err)
	}
	join := Control{Type: TypeJoin, Room: room}
	if proof != nil {
		join.Proof = proof(challenge)
	}
	if err := ws.Write(testCtx(t), websocket.MessageText, EncodeControl(join)); err != nil {
		t.Fatal(err)
	}
	_, b, err := ws.Read(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if answer, err = DecodeControl(b); err != nil {
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
	room := RoomForKey(key.Public().(ed25519.PublicKey))

	// Squatters, before the real pair.
	if _, err := Dial(testCtx(t), url, room); !errors.Is(err, ErrRoomProof) {
		t.Fatalf("a join without a proof: %v, want ErrRoomProof", err)
	}
	other := newKey(t)
	if _, ans := rawJoin(t, url, room, func(c []byte) string { return ProveJoin(other, room, c) }); ans.Code != CodeRoomProof {
		t.Fatalf("a proof with another key answered %+v", ans)
	}
	var captured string
	first, ans := rawJoin(t, url, room, func(c []byte) string { captured = ProveJoin(key, room, c); return captured })
	if ans.Type != TypeJoined {
		t.Fatalf("a good proof answered %+v", ans)
	}
	second, ans := rawJoin(t, url, room, func([]byte) string { return captured })
	if string(first) == string(second) || ans.Code != CodeRoomProof {
		t.Fatalf("a proof captured on another connection answered %+v (challenges equal: %v)", ans, string(first) == string(second))
	}
	if _, ans := rawJoin(t, url, "keyring."+room[len(KeyRoomPrefix):], nil); ans.Type != TypeJoined {
		t.Fatalf("a plain room is joined as before: %+v", ans)
	}
	if _, ans := rawJoin(t, url, KeyRoomPrefix+"notakey", nil); ans.Code != CodeRoomProof {
		t.Fatalf("a key-room name that names no key answered %+v", ans)
	}
	if st := srv.Stats(); st.Refused[ReasonRoomProof] != 4 {
		t.Fatalf("stats %+v: want 4 room-proof refusals", st)
	}
	waitFor(t, func() bool { return srv.Stats().Rooms == 0 }) // the good raw join and the plain one left

	// The holders of the key meet.
	d := &Dialer{RoomKey: key}
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
	want := Message{V: 1, Type: TypeCandidate, Candidate: testCand}
	if err := a.Send(testCtx(t), want); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, b); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	if _, err := d.Dial(testCtx(t), url, "another-room"); !errors.Is(err, ErrRoomProof) {
		t.Fatalf("RoomKey with another room's name: %v", err)
	}
}

func TestRoomForKey(t *testing.T) {
	k := newKey(t)
	pub := k.Public().(ed25519.PublicKey)
	name := RoomForKey(pub)
	if !ValidRoom(name) || !IsKeyRoom(name) || len(name) != len(KeyRoomPrefix)+52 {
		t.Fatalf("room %q", name)
	}
	got, err := roomKey(name)
	if err != nil || !got.Equal(pub) {
		t.Fatalf("roomKey(%q) = %x, %v", name, got, err)
	}
	for _, bad := range []string{name + "a", name[:len(name)-1], strings.ToUpper(name), KeyRoomPrefix, "plain"} {
		if _, err := roomKey(bad); !errors.Is(err, ErrRoomProof) {
			t.Errorf("roomKey(%q): %v", bad, err)
		}
	}
}

// FuzzRoomProof: the proof and challenge decoders take any bytes; a proof
// verifies only when it was made with the room's key over that challenge.
func FuzzRoomProof(f *testing.F) {
	k := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) // the same in every fuzz worker
	room := RoomForKey(k.Public().(ed25519.PublicKey))
	c := make([]byte, challengeLen)
	f.Add(room, ProveJoin(k, room, c), EncodeChallenge(c))
	f.Add(KeyRoomPrefix+"aaaa", "", "")
	f.Add("plain", "AAAA", "AAAA")
	f.Fuzz(func(t *testing.T, room, proof, challenge string) {
		ch, cerr := DecodeChallenge(challenge)
		if cerr == nil && (len(ch) != challengeLen || EncodeChallenge(ch) != challenge) {
			t.Fatalf("challenge %q decoded to %x", challenge, ch)
		}
		err := VerifyJoin(room, proof, ch)
		if err != nil && !errors.Is(err, ErrRoomProof) {
			t.Fatalf("verifyJoin: %v, want ErrRoomProof", err)
		}
		if err == nil {
			pub, _ := roomKey(room)
			if !pub.Equal(k.Public()) {
				t.Fatalf("a proof for room %q verified without its key", room)
			}
		}
		if len(ch) == challengeLen {
			if err := VerifyJoin(RoomForKey(k.Public().(ed25519.PublicKey)), ProveJoin(k, RoomForKey(k.Public().(ed25519.PublicKey)), ch), ch); err != nil {
				t.Fatalf("a proof made with the key: %v", err)
			}
		}
	})
}
