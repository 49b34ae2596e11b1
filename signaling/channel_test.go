package signaling

import (
	"strings"
	"testing"
)

func TestValidRoom(t *testing.T) {
	for _, name := range []string{"a", "Room-1.x_y", strings.Repeat("z", 128)} {
		if !ValidRoom(name) {
			t.Errorf("ValidRoom(%q) = false", name)
		}
	}
	for _, name := range []string{"", strings.Repeat("z", 129), "a b", "a/b", "é", "a\n"} {
		if ValidRoom(name) {
			t.Errorf("ValidRoom(%q) = true", name)
		}
	}
}
