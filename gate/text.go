package gate

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clip bounds text that pregate did not write (a registry's error
// message, a certificate's subject, a statement's predicate type) to at
// most n bytes on one line: control characters and invalid UTF-8 become
// spaces, and what is cut is marked with "…", inside the n bytes. Text
// from outside is never allowed to make a message, a condition or a
// status too large to record.
func Clip(s string, n int) string {
	clean := strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, " "))
	if len(clean) <= n {
		return clean
	}
	const mark = "…"
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(clean[cut]) {
		cut--
	}
	return clean[:cut] + mark
}
