package ui

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// clean makes text that a user or a peer controls safe to draw: it drops C0
// and C1 controls (ESC would start an escape sequence), DEL, invalid UTF-8
// and Unicode format characters (bidi overrides, zero-width characters) that
// make text display as something it is not, and turns any whitespace into a
// plain space. removed reports whether anything other than whitespace was
// dropped, so the user can be told.
func clean(s string) (out string, removed bool) {
	if isPlainASCII(s) {
		return s, false
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
			// RuneError also stands for each invalid byte.
			removed = true
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), removed
}

// isPlainASCII is clean's fast path: printable ASCII needs no work.
func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// safe is clean without the report, for drawing text.
func safe(s string) string {
	out, _ := clean(s)
	return out
}

// digits keeps the ASCII digits of s: the code input accepts "123 456" and
// "123-456" by never letting the separators in.
func digits(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// firstRunes returns at most n runes of s and whether it cut anything.
func firstRunes(s string, n int) (string, bool) {
	if n <= 0 {
		return "", s != ""
	}
	i := 0
	for j := range s {
		if i == n {
			return s[:j], true
		}
		i++
	}
	return s, false
}

// inWords says how long d is the way a person would: "42s", "3 min",
// "1 h 5 min". It rounds up so that "in 1 min" is never too early.
func inWords(d time.Duration) string {
	secs := int((d + time.Second - 1) / time.Second)
	switch {
	case secs < 1:
		return "a moment"
	case secs <= 60:
		return fmt.Sprintf("%ds", secs)
	case secs < 3600:
		return fmt.Sprintf("%d min", (secs+59)/60)
	}
	mins := (secs + 59) / 60
	if mins%60 == 0 {
		return fmt.Sprintf("%d h", mins/60)
	}
	return fmt.Sprintf("%d h %d min", mins/60, mins%60)
}

// clock renders a countdown as m:ss.
func clock(d time.Duration) string {
	secs := max(int((d+time.Second-1)/time.Second), 0)
	if secs >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	}
	return fmt.Sprintf("%d:%02d", secs/60, secs%60)
}

// plural returns "1 attempt" or "3 attempts".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
