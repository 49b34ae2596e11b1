package signaling

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
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
