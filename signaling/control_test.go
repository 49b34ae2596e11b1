package signaling

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestControlRoundTrip(t *testing.T) {
	for _, c := range []Control{
		{Type: TypeJoin, Room: "r"},
		{Type: TypeJoin, Room: KeyRoomPrefix + "abc", Proof: "c2ln"},
		{Type: TypeJoined, Room: "r", Members: 2},
		{Type: TypeError, Code: CodeRoomFull, Reason: "full"},
		{Type: TypeJoined, Room: "r", Members: 1, Relays: []Relay{{URI: "turn:198.51.100.10:3478?transport=tcp", Username: "1800000000:ip:203.0.113.7", Credential: "c2VjcmV0"}}},
	} {
		got, err := DecodeControl(EncodeControl(c))
		c.V = Version
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	for in, want := range map[string]error{
		`{"v":2,"type":"join"}`: ErrVersion,
		`{"type":"join"}`:       ErrInvalidMessage,
		`join`:                  ErrInvalidMessage,
	} {
		if _, err := DecodeControl([]byte(in)); !errors.Is(err, want) {
			t.Errorf("DecodeControl(%s): %v, want %v", in, err, want)
		}
	}
}

// A refusal reaches the client as a Message it can decode, however long
// or badly encoded the error's text, and keeps its code.
func TestEncodeErrorDecodes(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: %q", ErrRoomFull, "r"),
		fmt.Errorf("%w: %s", ErrTooManyRooms, strings.Repeat("é", MaxReasonLen)),
		errors.New("not UTF-8: \xff\xfe"),
	} {
		m, derr := Decode(EncodeError(err))
		// Every reason here is longer than 10 bytes, and those are ASCII.
		if derr != nil || m.Type != TypeError || m.Code != CodeOf(err) || len(m.Reason) < 10 || !strings.HasPrefix(err.Error(), m.Reason[:10]) {
			t.Errorf("EncodeError(%.40q) decodes to %+v, %v", err, m, derr)
		}
	}
}

// FuzzControl: DecodeControl takes any bytes, refuses with ErrVersion or
// ErrInvalidMessage, and what it accepts encodes to the same Control; the
// error message of any text decodes as a Message.
func FuzzControl(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"join","room":"r"}`,
		`{"v":1,"type":"join","room":"key.aaaa","proof":"AAAA"}`,
		`{"v":1,"type":"joined","room":"r","members":2}`,
		`{"v":1,"type":"error","code":"room-full","reason":"x"}`,
		`{"v":2}`,
		`null`,
		"\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := Decode(EncodeError(errors.New(string(b)))); err != nil || m.Type != TypeError {
			t.Fatalf("the error message for %q decodes to %+v, %v", b, m, err)
		}
		c, err := DecodeControl(b)
		if err != nil {
			if !errors.Is(err, ErrVersion) && !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("DecodeControl(%q): %v, want ErrVersion or ErrInvalidMessage", b, err)
			}
			return
		}
		again, err := DecodeControl(EncodeControl(c))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("DecodeControl(%q) = %+v, but its encoding decodes to %+v, %v", b, c, again, err)
		}
	})
}
