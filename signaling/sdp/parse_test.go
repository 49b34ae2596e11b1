package sdp

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/icetcp/icetcp/candidate"
)

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestParseCaptured reads SDP written by libwebrtc, pion/webrtc and libnice
// (testdata/README.md says how each was captured).
func TestParseCaptured(t *testing.T) {
	for _, tc := range []struct {
		file            string
		ufrag, pwd, mid string
		options         []string
		cands, tcp      int
		endOfCandidates bool
		sections        int
	}{
		{"libwebrtc-offer.sdp", "mq4B", "kINJ6fAOIG7AykrPexaM1S4/", "0", []string{"trickle"}, 8, 4, false, 2},
		{"pion-webrtc-offer.sdp", "RIPmkwuPxEJGvvjQ", "yMgyOWrNrjXmpBhGShtzlVjjnKuiYcOp", "0", nil, 4, 2, true, 1},
		{"libnice-local.sdp", "hzv+", "22Hy6zJS9a+q2ZfMGf4by2", "", nil, 2, 2, false, 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s := readTestdata(t, tc.file)
			a, err := Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			if a.Ufrag != tc.ufrag || a.Pwd != tc.pwd || a.Mid != tc.mid {
				t.Errorf("ufrag/pwd/mid = %q %q %q, want %q %q %q", a.Ufrag, a.Pwd, a.Mid, tc.ufrag, tc.pwd, tc.mid)
			}
			if !reflect.DeepEqual(a.Options, tc.options) {
				t.Errorf("options %q, want %q", a.Options, tc.options)
			}
			if len(a.Candidates) != tc.cands || len(a.TCPCandidates()) != tc.tcp || a.EndOfCandidates != tc.endOfCandidates {
				t.Errorf("%d candidates (%d TCP), eoc %v; want %d (%d), %v", len(a.Candidates), len(a.TCPCandidates()), a.EndOfCandidates, tc.cands, tc.tcp, tc.endOfCandidates)
			}
			for _, c := range a.TCPCandidates() {
				if _, err := candidate.Parse(c); err != nil {
					t.Errorf("candidate.Parse(%q): %v", c, err)
				}
			}
			secs, err := ParseSections(s)
			if err != nil || len(secs) != tc.sections {
				t.Errorf("ParseSections: %d sections, %v; want %d", len(secs), err, tc.sections)
			}
			// LF-only and CRLF input read the same.
			lf, err := Parse(strings.ReplaceAll(s, "\r\n", "\n"))
			if err != nil || !reflect.DeepEqual(lf, a) {
				t.Errorf("LF-only input differs: %+v, %v", lf, err)
			}
			crlf, err := Parse(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
			if err != nil || !reflect.DeepEqual(crlf, a) {
				t.Errorf("CRLF input differs: %+v, %v", crlf, err)
			}
		})
	}
}

const (
	ufrag = "abcd"
	pwd   = "0123456789abcdefghijkl"
	tcpC  = "candidate:1 1 TCP 2105458943 127.0.0.1 9 typ host tcptype active"
	tcpP  = "candidate:2 1 tcp 2105458942 127.0.0.1 5000 typ host tcptype passive"
	udpC  = "candidate:3 1 udp 2122260223 127.0.0.1 5001 typ host"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Attributes
	}{
		{"loose lines", "a=ice-ufrag:" + ufrag + "\na=ice-pwd:" + pwd + "\na=" + tcpC + "\n",
			Attributes{Ufrag: ufrag, Pwd: pwd, Candidates: []string{tcpC}}},
		{"bare trickle candidate", tcpP, Attributes{Candidates: []string{tcpP}}},
		{"end of candidates alone", "a=end-of-candidates\r\n", Attributes{EndOfCandidates: true}},
		{"empty", "", Attributes{}},
		{"session-level credentials and options, first section UDP only",
			"v=0\r\na=ice-lite\r\na=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\na=ice-options:trickle ice2\r\n" +
				"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:a\r\na=" + udpC + "\r\n" +
				"m=application 9 TCP/DTLS/SCTP webrtc-datachannel\r\na=mid:d\r\na=" + tcpP + "\r\na=end-of-candidates\r\n",
			Attributes{Ufrag: ufrag, Pwd: pwd, Options: []string{"trickle", "ice2"}, Lite: true, Candidates: []string{tcpP}, EndOfCandidates: true, Mid: "d"}},
		{"section credentials override the session's",
			"a=ice-ufrag:sess\na=ice-pwd:" + pwd + "\nm=application 9 X\na=ice-ufrag:" + ufrag + "\na=ice-pwd:" + strings.ToUpper(pwd) + "\n",
			Attributes{Ufrag: ufrag, Pwd: strings.ToUpper(pwd)}},
		{"no TCP anywhere: first section",
			"m=audio 1 RTP/AVP 0\na=mid:1\na=" + udpC + "\nm=video 1 RTP/AVP 0\na=mid:2\n",
			Attributes{Candidates: []string{udpC}, Mid: "1"}},
		{"unknown and malformed lines are skipped",
			"garbage\n=\na=\na=foo\na=ice-ufragment:x\nb=AS:30\n  a=candidate:indented\na=" + tcpC + "\n",
			Attributes{Candidates: []string{tcpC}}},
		{"whitespace around values", "a=ice-ufrag: " + ufrag + " \na=ice-pwd:" + pwd + "\t\n",
			Attributes{Ufrag: ufrag, Pwd: pwd}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		sentinel error
		words    string
	}{
		{"ufrag without pwd", "a=ice-ufrag:" + ufrag, 0, ErrInvalid, "without a=ice-pwd"},
		{"pwd without ufrag", "m=x\na=ice-pwd:" + pwd, 0, ErrInvalid, "section 1"},
		{"repeated ufrag", "a=ice-ufrag:" + ufrag + "\na=ice-ufrag:" + ufrag, 2, ErrInvalid, "repeated"},
		{"empty ufrag", "a=ice-ufrag:", 1, ErrInvalid, "empty a=ice-ufrag"},
		{"short pwd", "a=ice-ufrag:" + ufrag + "\na=ice-pwd:short", 0, ErrInvalid, "pwd"},
		{"non-ICE character", "a=ice-ufrag:ab_cd\na=ice-pwd:" + pwd, 0, ErrInvalid, "non-ICE character"},
		{"empty candidate", "a=candidate:", 1, ErrInvalid, "empty a=candidate"},
		{"control character", "a=candidate:1 1 TCP 1 1.2.3.4 9 typ host\x01", 1, ErrInvalid, "control character"},
		{"long candidate", "a=candidate:" + strings.Repeat("x", 2000), 1, ErrInvalid, "longer"},
		{"empty ice-options", "a=ice-options:", 1, ErrInvalid, "without a token"},
		{"repeated ice-options", "a=ice-options:trickle\na=ice-options:trickle", 2, ErrInvalid, "repeated"},
		{"too large", strings.Repeat("a=x\n", MaxSize/4+1), 0, ErrTooLarge, "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, tc.sentinel) {
				t.Fatalf("error %v, want a *ParseError wrapping %v", err, tc.sentinel)
			}
			if pe.Line != tc.line || !strings.Contains(err.Error(), tc.words) || !strings.HasPrefix(err.Error(), "sdp: ") {
				t.Errorf("error %q (line %d), want line %d and %q", err, pe.Line, tc.line, tc.words)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	a := Attributes{Ufrag: ufrag, Pwd: pwd, Options: []string{"trickle"}, Lite: true, Candidates: []string{tcpC, tcpP, udpC}, EndOfCandidates: true}
	s := Marshal(a)
	want := "a=ice-lite\r\na=ice-ufrag:abcd\r\na=ice-pwd:" + pwd + "\r\na=ice-options:trickle\r\na=" + tcpC + "\r\na=" + tcpP + "\r\na=" + udpC + "\r\na=end-of-candidates\r\n"
	if s != want {
		t.Fatalf("Marshal:\n%s\nwant\n%s", s, want)
	}
	got, err := Parse(s)
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("Parse(Marshal(a)) = %+v, %v", got, err)
	}
	// A candidate given without its prefix gets one.
	if l := Lines(Attributes{Candidates: []string{"1 1 TCP 1 1.2.3.4 9 typ host tcptype active"}}); l[0] != "a=candidate:1 1 TCP 1 1.2.3.4 9 typ host tcptype active" {
		t.Errorf("Lines = %q", l)
	}
	if Marshal(Attributes{}) != "" {
		t.Errorf("empty attributes marshal to %q", Marshal(Attributes{}))
	}
}

func TestControlling(t *testing.T) {
	for _, tc := range []struct{ offerer, localLite, remoteLite, want bool }{
		{true, false, false, true},
		{false, false, false, false},
		{false, false, true, true}, // full answerer facing a lite offerer controls
		{true, true, false, false}, // lite offerer does not
		{true, true, true, true},
		{false, true, true, false},
	} {
		if got := Controlling(tc.offerer, tc.localLite, tc.remoteLite); got != tc.want {
			t.Errorf("Controlling(%v, %v, %v) = %v", tc.offerer, tc.localLite, tc.remoteLite, got)
		}
	}
}
