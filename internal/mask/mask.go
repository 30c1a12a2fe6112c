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
// replies and other error texts that echo the address back.
func In(s, addr string) string {
	if addr == "" {
		return s
	}
	return strings.ReplaceAll(s, addr, Address(addr))
}
