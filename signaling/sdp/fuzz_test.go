package sdp

import (
	"os"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors are
// *ParseError values, and that whatever it accepts survives
// Marshal and Parse unchanged (Mid aside: Marshal does not write it).
func FuzzParse(f *testing.F) {
	for _, name := range []string{"libwebrtc-offer.sdp", "pion-webrtc-offer.sdp", "libnice-local.sdp"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("a=ice-ufrag:abcd\na=ice-pwd:0123456789abcdefghijkl\na=end-of-candidates")
	f.Add("candidate:1 1 TCP 1 127.0.0.1 9 typ host tcptype active")
	f.Add("m=x\na=ice-options:trickle\nm=y\na=candidate:1 1 tcp 1 ::1 5 typ host tcptype so")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := Parse(in)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error %T %v is not a *ParseError", err, err)
			}
			return
		}
		a.Mid = ""
		b, err := Parse(Marshal(a))
		if err != nil {
			t.Fatalf("Parse(Marshal(%+v)): %v", a, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed\n%+v\n%+v", a, b)
		}
	})
}
