// Package quote spells untrusted text for error messages and logs.
package quote

import (
	"fmt"
	"unicode/utf8"
)

// MaxShort is how many bytes of the text Short keeps.
const MaxShort = 40

// Short quotes s with %q, cut on a rune boundary after MaxShort bytes and
// then followed by the whole length, so that a hostile 1 KiB field does
// not end up whole in an error message or a log line.
func Short(s string) string {
	if len(s) <= MaxShort {
		return fmt.Sprintf("%q", s)
	}
	cut := MaxShort
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q...(%d bytes)", s[:cut], len(s))
}
