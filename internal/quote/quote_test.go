package quote

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShort(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", `""`},
		{"room-1", `"room-1"`},
		{"a\nb", `"a\nb"`},
		{strings.Repeat("x", MaxShort), `"` + strings.Repeat("x", MaxShort) + `"`},
		{strings.Repeat("x", MaxShort+1), `"` + strings.Repeat("x", MaxShort) + `"...(41 bytes)`},
		// é is two bytes: the cut falls inside the 21st and moves before it.
		{strings.Repeat("é", 30), `"` + strings.Repeat("é", 20) + `"...(60 bytes)`},
		{"x" + strings.Repeat("é", 30), `"x` + strings.Repeat("é", 19) + `"...(61 bytes)`},
	} {
		got := Short(tt.in)
		if got != tt.want {
			t.Errorf("Short(%q) = %s, want %s", tt.in, got, tt.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Short(%q) = %q is not UTF-8", tt.in, got)
		}
	}
}
