package signaling

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	testUfrag = "abcd"
	testPwd   = "0123456789abcdefghijkl" // 22 ICE-chars
	testCand  = "candidate:1 1 TCP 2128609279 10.0.0.1 9 typ host tcptype active"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	msgs := []Message{
		{Type: TypeCredentials, Ufrag: testUfrag, Pwd: testPwd, Tiebreaker: 1<<64 - 1, Role: RoleControlling},
		{Type: TypeCredentials, Ufrag: "a+/Z" + strings.Repeat("x", 252), Pwd: strings.Repeat("/", 256), Role: RoleControlled},
		{Type: TypeCredentials, Ufrag: testUfrag, Pwd: testPwd}, // role by tie-breaker, tie-breaker 0
		{Type: TypeCandidate, Candidate: testCand},
		{Type: TypeCandidate, Candidate: strings.Repeat("c", MaxCandidateLen)},
		{Type: TypeEndOfCandidates},
		{Type: TypeBye},
		{Type: TypeBye, Reason: "done <&> \"quoted\" ünïcode"},
		{Type: TypePunch, Punch: &Punch{Seq: 1, Phase: PunchPing}},
		{Type: TypePunch, Punch: &Punch{Seq: 1, Phase: PunchPong}},
		{Type: TypePunch, Punch: &Punch{Seq: 7, Phase: PunchGo, DelayMs: 42}},
		{Type: TypePeerLeft},
		{Type: TypeError, Code: CodeQueueFull, Reason: "full"},
		{Type: TypeConfirm, Confirm: &Confirm{Nonce: "AAECAwQFBgcICQoLDA0ODw"}},
		{Type: TypeConfirm, Confirm: &Confirm{Nonce: "AAEC", To: "Zm9v", MAC: strings.Repeat("_-9z", MaxConfirmLen/4)}},
		{Type: TypePake, Pake: &Pake{From: PakeMaker, Msg: strings.Repeat("_-9z", MaxPakeLen/4)}},
		{Type: TypePake, Pake: &Pake{From: PakeTaker, Msg: "BAEC"}},
	}
	for _, m := range msgs {
		t.Run(string(m.Type), func(t *testing.T) {
			b, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			want := m
			want.V = Version
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestEncodeWireForm(t *testing.T) {
	b, err := Encode(Message{Type: TypeCredentials, Ufrag: testUfrag, Pwd: testPwd, Tiebreaker: 18446744073709551615})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"type":"credentials","ufrag":"abcd","pwd":"0123456789abcdefghijkl","tiebreaker":"18446744073709551615"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}

func TestDecodeAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Message
	}{
		{"unknown fields ignored", `{"v":1,"type":"bye","future":{"x":[1,2]},"reason":"r"}`, Message{V: 1, Type: TypeBye, Reason: "r"}},
		{"whitespace", " \n{\"v\":1,\"type\":\"end-of-candidates\"}\n", Message{V: 1, Type: TypeEndOfCandidates}},
		{"tiebreaker string", `{"v":1,"type":"credentials","ufrag":"abcd","pwd":"0123456789abcdefghijkl","tiebreaker":"5"}`,
			Message{V: 1, Type: TypeCredentials, Ufrag: testUfrag, Pwd: testPwd, Tiebreaker: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	cred := func(ufrag, pwd, role string) string {
		return `{"v":1,"type":"credentials","ufrag":"` + ufrag + `","pwd":"` + pwd + `","role":"` + role + `"}`
	}
	tests := []struct {
		name   string
		in     string
		target error  // errors.Is target
		text   string // exact error text, when set
		substr string // part of the error text
	}{
		{name: "too large", in: `{"v":1,"type":"bye","reason":"` + strings.Repeat("x", MaxMessageSize) + `"}`, target: ErrTooLarge},
		{name: "empty", in: ``, target: ErrInvalidMessage, substr: "not a JSON object"},
		{name: "null", in: `null`, target: ErrInvalidMessage, substr: "not a JSON object"},
		{name: "array", in: `[1]`, target: ErrInvalidMessage, substr: "not a JSON object"},
		{name: "bad json", in: `{"v":1,`, target: ErrInvalidMessage, substr: "bad JSON"},
		{name: "trailing data", in: `{"v":1,"type":"bye"} x`, target: ErrInvalidMessage, substr: "bad JSON"},
		{name: "wrong field type", in: `{"v":"1","type":"bye"}`, target: ErrInvalidMessage, substr: "bad JSON"},
		{name: "tiebreaker as number", in: `{"v":1,"type":"credentials","tiebreaker":5}`, target: ErrInvalidMessage, substr: "bad JSON"},
		{name: "missing v", in: `{"type":"bye"}`, target: ErrInvalidMessage, text: "signaling: decode: missing v"},
		{name: "higher version", in: `{"v":2,"type":"bye"}`, target: ErrVersion, text: "signaling: unsupported message version: got v=2, this side speaks 1"},
		{name: "version zero", in: `{"v":0,"type":"bye"}`, target: ErrVersion},
		{name: "pake without body", in: `{"v":1,"type":"pake"}`, target: ErrInvalidMessage, substr: "missing pake"},
		{name: "pake from nobody", in: `{"v":1,"type":"pake","pake":{"from":"x","msg":"AA"}}`, target: ErrInvalidMessage, substr: "pake from"},
		{name: "pake msg not base64url", in: `{"v":1,"type":"pake","pake":{"from":"maker","msg":"A+/="}}`, target: ErrInvalidMessage, substr: "pake msg"},
		{name: "pake msg too long", in: `{"v":1,"type":"pake","pake":{"from":"maker","msg":"` + strings.Repeat("A", MaxPakeLen+1) + `"}}`, target: ErrInvalidMessage, substr: "pake msg"},
		{name: "missing type", in: `{"v":1}`, target: ErrInvalidMessage, text: "signaling: decode: missing type"},
		{name: "unknown type", in: `{"v":1,"type":"hello"}`, target: ErrInvalidMessage, text: `signaling: decode: unknown type "hello"`},
		{name: "join is not an agent message", in: `{"v":1,"type":"join","room":"r"}`, target: ErrInvalidMessage, substr: "unknown type"},
		{name: "ufrag short", in: cred("ab", testPwd, ""), target: ErrInvalidMessage, text: `signaling: decode: credentials: ufrag "ab" shorter than 4`},
		{name: "ufrag missing", in: `{"v":1,"type":"credentials","pwd":"` + testPwd + `"}`, target: ErrInvalidMessage, text: `signaling: decode: credentials: ufrag "" shorter than 4`},
		{name: "ufrag long", in: cred(strings.Repeat("a", 257), testPwd, ""), target: ErrInvalidMessage, substr: "ufrag \"aaaa"},
		{name: "ufrag bad char", in: cred("ab-cd", testPwd, ""), target: ErrInvalidMessage, text: `signaling: decode: credentials: ufrag "ab-cd" has non-ICE character '-' at 2`},
		{name: "pwd short", in: cred(testUfrag, "short", ""), target: ErrInvalidMessage, text: `signaling: decode: credentials: pwd "short" shorter than 22`},
		{name: "pwd long", in: cred(testUfrag, strings.Repeat("p", 257), ""), target: ErrInvalidMessage, substr: "longer than 256"},
		{name: "pwd bad char", in: cred(testUfrag, testPwd+"=", ""), target: ErrInvalidMessage, substr: "non-ICE character '='"},
		{name: "role unknown", in: cred(testUfrag, testPwd, "boss"), target: ErrInvalidMessage, substr: `role "boss" is not`},
		{name: "candidate empty", in: `{"v":1,"type":"candidate"}`, target: ErrInvalidMessage, text: "signaling: decode: candidate: empty candidate"},
		{name: "candidate long", in: `{"v":1,"type":"candidate","candidate":"` + strings.Repeat("c", 1025) + `"}`, target: ErrInvalidMessage, substr: "longer than 1024"},
		{name: "candidate LF", in: `{"v":1,"type":"candidate","candidate":"a\nb"}`, target: ErrInvalidMessage, substr: "control character 0x0a"},
		{name: "candidate CR", in: `{"v":1,"type":"candidate","candidate":"a\rb"}`, target: ErrInvalidMessage, substr: "control character 0x0d"},
		{name: "punch missing", in: `{"v":1,"type":"punch"}`, target: ErrInvalidMessage, text: "signaling: decode: punch: missing punch"},
		{name: "punch phase", in: `{"v":1,"type":"punch","punch":{"seq":1,"phase":"now"}}`, target: ErrInvalidMessage, substr: `phase "now" is not`},
		{name: "punch delay", in: `{"v":1,"type":"punch","punch":{"seq":1,"phase":"go","delay_ms":60001}}`, target: ErrInvalidMessage, substr: "delay_ms 60001 above 60000"},
		{name: "confirm missing", in: `{"v":1,"type":"confirm"}`, target: ErrInvalidMessage, text: "signaling: decode: confirm: missing confirm"},
		{name: "confirm empty", in: `{"v":1,"type":"confirm","confirm":{}}`, target: ErrInvalidMessage, substr: "needs a nonce"},
		{name: "confirm mac without to", in: `{"v":1,"type":"confirm","confirm":{"nonce":"a","mac":"b"}}`, target: ErrInvalidMessage, substr: "to and mac together"},
		{name: "confirm long", in: `{"v":1,"type":"confirm","confirm":{"nonce":"` + strings.Repeat("a", 65) + `"}}`, target: ErrInvalidMessage, substr: "longer than 64"},
		{name: "confirm not base64url", in: `{"v":1,"type":"confirm","confirm":{"nonce":"a+b/"}}`, target: ErrInvalidMessage, substr: "not base64url"},
		{name: "reason long", in: `{"v":1,"type":"bye","reason":"` + strings.Repeat("r", 1025) + `"}`, target: ErrInvalidMessage, substr: "reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatal("Decode succeeded")
			}
			if !errors.Is(err, tt.target) {
				t.Errorf("error %q does not match %v", err, tt.target)
			}
			if !strings.HasPrefix(err.Error(), "signaling: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if tt.text != "" && err.Error() != tt.text {
				t.Errorf("error\n got %q\nwant %q", err, tt.text)
			}
			if tt.substr != "" && !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("error %q does not contain %q", err, tt.substr)
			}
			var me *MessageError
			if errors.Is(tt.target, ErrInvalidMessage) && !errors.As(err, &me) {
				t.Errorf("error %q is not a *MessageError", err)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		m      Message
		target error
	}{
		{"version", Message{V: 2, Type: TypeBye}, ErrVersion},
		{"no type", Message{}, ErrInvalidMessage},
		{"unknown type", Message{Type: "x"}, ErrInvalidMessage},
		{"credentials", Message{Type: TypeCredentials, Ufrag: "ab", Pwd: testPwd}, ErrInvalidMessage},
		{"candidate newline", Message{Type: TypeCandidate, Candidate: "a\nb"}, ErrInvalidMessage},
		{"candidate invalid UTF-8", Message{Type: TypeCandidate, Candidate: "a\xffb"}, ErrInvalidMessage},
		{"punch nil", Message{Type: TypePunch}, ErrInvalidMessage},
		{"punch phase", Message{Type: TypePunch, Punch: &Punch{Phase: "x"}}, ErrInvalidMessage},
		{"bye reason too long", Message{Type: TypeBye, Reason: strings.Repeat("r", MaxReasonLen+1)}, ErrInvalidMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tt.m)
			if !errors.Is(err, tt.target) {
				t.Fatalf("Encode error %v, want %v", err, tt.target)
			}
			if !strings.HasPrefix(err.Error(), "signaling: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestQuoteShortKeepsErrorsSmall(t *testing.T) {
	_, err := Decode([]byte(`{"v":1,"type":"credentials","ufrag":"` + strings.Repeat("é", 120) + `","pwd":"` + testPwd + `"}`))
	if err == nil || len(err.Error()) > 200 {
		t.Fatalf("error too long or missing: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"type":"credentials","ufrag":"abcd","pwd":"0123456789abcdefghijkl","tiebreaker":"42","role":"controlled"}`,
		`{"v":1,"type":"candidate","candidate":"` + testCand + `"}`,
		`{"v":1,"type":"end-of-candidates"}`,
		`{"v":1,"type":"bye","reason":"x"}`,
		`{"v":1,"type":"punch","punch":{"seq":3,"phase":"go","delay_ms":20}}`,
		`{"v":1,"type":"peer-left"}`,
		`{"v":1,"type":"error","code":"queue-full","reason":"r"}`,
		`{"v":2,"type":"bye"}`,
		`{"V":1,"TYPE":"bye","x":null}`,
		`null`,
		`{"v":1,"type":"bye","punch":{}}`,
		`{"v":1,"type":"confirm","confirm":{"nonce":"AAECAwQFBgcICQoLDA0ODw"}}`,
		`{"v":1,"type":"confirm","confirm":{"nonce":"AAECAwQFBgcICQoLDA0ODw","to":"AAECAwQFBgcICQoLDA0ODw","mac":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}}`,
		`{"v":1,"type":"confirm","confirm":{"nonce":"a","mac":"b"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		b2, err := Encode(m)
		if err != nil {
			t.Fatalf("Decode(%q) = %+v, but Encode fails: %v", b, m, err)
		}
		m2, err := Decode(b2)
		if err != nil {
			t.Fatalf("re-Decode(%q): %v", b2, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", m, m2)
		}
	})
}
