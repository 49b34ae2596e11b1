package rendezvous

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var (
	testNode1 = strings.Repeat("a", nodeIDLen)
	testMem1  = strings.Repeat("1", memberIDLen)
	testMem2  = strings.Repeat("2", memberIDLen)
)

func TestEnvelopeRoundTrip(t *testing.T) {
	body := []byte(`{"v":1,"type":"candidate","candidate":"x\ny"}` + "\n" + `trailing lines stay`)
	for _, tc := range []struct {
		e    envelope
		body []byte
	}{
		{envelope{Kind: kindJoined, Room: "r", From: testMem1, Node: testNode1, To: testMem2}, nil},
		{envelope{Kind: kindLeft, Room: "key.abc", From: testMem1, Node: testNode1, To: testMem2}, nil},
		{envelope{Kind: kindMsg, Room: "r", From: testMem1, Node: testNode1, To: testMem2}, body},
	} {
		got, gotBody, err := decodeEnvelope(encodeEnvelope(tc.e, tc.body))
		tc.e.V = envelopeVersion
		if err != nil || got != tc.e || !bytes.Equal(gotBody, tc.body) {
			t.Errorf("%+v: %+v %q %v", tc.e, got, gotBody, err)
		}
	}
	for name, in := range map[string]string{
		"not JSON":     "x",
		"version":      `{"v":2,"k":"left","r":"r","f":"` + testMem1 + `","n":"` + testNode1 + `","t":"` + testMem2 + `"}`,
		"kind":         `{"v":1,"k":"boom","r":"r","f":"` + testMem1 + `","n":"` + testNode1 + `","t":"` + testMem2 + `"}`,
		"room":         `{"v":1,"k":"left","r":"a b","f":"` + testMem1 + `","n":"` + testNode1 + `","t":"` + testMem2 + `"}`,
		"id":           `{"v":1,"k":"left","r":"r","f":"XYZ","n":"` + testNode1 + `","t":"` + testMem2 + `"}`,
		"msg, no body": `{"v":1,"k":"msg","r":"r","f":"` + testMem1 + `","n":"` + testNode1 + `","t":"` + testMem2 + `"}`,
		"left, body":   `{"v":1,"k":"left","r":"r","f":"` + testMem1 + `","n":"` + testNode1 + `","t":"` + testMem2 + "\"}\n{}",
	} {
		if _, _, err := decodeEnvelope([]byte(in)); !errors.Is(err, errEnvelope) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzEnvelope: what decodes, encodes to itself (the body byte for byte),
// and never carries a room name, ID or body the checks refuse.
func FuzzEnvelope(f *testing.F) {
	f.Add(encodeEnvelope(envelope{Kind: kindMsg, Room: "r", From: testMem1, Node: testNode1, To: testMem2}, []byte(`{"v":1}`)))
	f.Add(encodeEnvelope(envelope{Kind: kindJoined, Room: "r", From: testMem1, Node: testNode1, To: testMem2}, nil))
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, body, err := decodeEnvelope(b)
		if err != nil {
			if !errors.Is(err, errEnvelope) {
				t.Fatalf("error %v is not errEnvelope", err)
			}
			return
		}
		again, againBody, err := decodeEnvelope(encodeEnvelope(e, body))
		if err != nil || again != e || !bytes.Equal(againBody, body) {
			t.Fatalf("%+v %q re-decodes to %+v %q, %v", e, body, again, againBody, err)
		}
	})
}

// FuzzRoomState: a room record decodes only with at most two distinct,
// well-formed members, and encodes to itself.
func FuzzRoomState(f *testing.F) {
	f.Add(roomState{Room: "r", Members: []roomMember{{testNode1, testMem1}, {testNode1, testMem2}}}.encode())
	f.Add([]byte(`{"v":1,"room":"r","m":[]}`))
	f.Add([]byte(`{"v":1,"room":"r","m":[{"n":"x","id":"y"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeRoomState(b)
		if err != nil {
			if !errors.Is(err, errRoomState) {
				t.Fatalf("error %v is not errRoomState", err)
			}
			return
		}
		if len(st.Members) > 2 || len(st.Members) == 2 && st.Members[0].ID == st.Members[1].ID {
			t.Fatalf("accepted %+v", st)
		}
		again, err := decodeRoomState(st.encode())
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("%+v re-decodes to %+v, %v", st, again, err)
		}
	})
}
