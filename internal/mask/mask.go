// Package mask hides email addresses in what the operator's log shows.
package mask

import "strings"

// Address masks the local part of an email address: "alice@example.com"
// becomes "a***@example.com". Anything that is not an address becomes "***".
func Address(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "***"
	}
	local, domain := addr[:at], addr[at+1:]
	first := local[:1]
	if first[0] >= 0x80 || first[0] < 0x20 {
		first = "" // never cut a multi-byte rune or show a control byte
	}
	return first + "***@" + domain
}

// In replaces every occurrence of addr in s with its masked form, for SMTP
// replies and other error texts that echo the address back. ASCII letters
// match in any case: servers often echo an address lower-cased.
func In(s, addr string) string {
	if addr == "" {
		return s
	}
	// asciiLower keeps byte offsets, so a match in the folded text is a
	// match at the same place in s.
	hay, needle := asciiLower(s), asciiLower(addr)
	var b strings.Builder
	last := 0
	for {
		i := strings.Index(hay[last:], needle)
		if i < 0 {
			break
		}
		if b.Len() == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last : last+i])
		b.WriteString(Address(addr))
		last += i + len(needle)
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func asciiLower(s string) string {
	b := []byte(s) // bytewise: invalid UTF-8 must keep its length too
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
