package otp

import (
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Limits from RFC 5321 §4.5.3.1 (path 256 octets minus the angle brackets).
const (
	maxAddressLen = 254
	maxLocalLen   = 64
	maxLabelLen   = 63
)

// Reasons an address is refused, worded for the user.
const (
	reasonEmpty    = "is empty"
	reasonTooLong  = "is longer than 254 bytes"
	reasonUTF8     = "is not valid UTF-8 text"
	reasonControl  = "contains control characters"
	reasonASCII    = "must use only ASCII characters"
	reasonNoAt     = "must contain an @, like name@example.com"
	reasonPlain    = "must be a plain address like name@example.com"
	reasonLocalLen = "has a name before the @ longer than 64 bytes"
	reasonNoDot    = "must have a domain with a dot, like example.com"
	reasonDomain   = "has an invalid domain"
)

// NormalizeAddress validates address as a bare addr-spec and returns it with
// surrounding spaces and tabs trimmed and the domain lower-cased; the local
// part keeps its case because RFC 5321 lets servers treat it as
// case-sensitive. An invalid address yields an *AddressError whose Reason a
// user can act on.
//
// Accepted: an unquoted dot-atom local part of at most 64 bytes, "@", and a
// domain name with at least one dot, labels of ASCII letters, digits and
// inner hyphens, a non-numeric top-level label; at most 254 bytes in all and
// whatever net/mail.ParseAddress accepts as exactly that addr-spec.
//
// Refused on purpose: display names, angle brackets, comments and quoted
// local parts (a code goes to exactly the string the user typed); single-label
// domains such as "localhost" (no public mail host has one, and "name@gmail"
// is a typo); domain literals; and non-ASCII addresses, because without IDNA
// and Unicode normalisation one mailbox would have many spellings, each with
// its own limits, and most relays cannot deliver to them (no SMTPUTF8).
func NormalizeAddress(address string) (string, error) {
	if !utf8.ValidString(address) {
		return "", &AddressError{Reason: reasonUTF8}
	}
	s := strings.Trim(address, " \t")
	if s == "" {
		return "", &AddressError{Reason: reasonEmpty}
	}
	if len(s) > maxAddressLen {
		return "", &AddressError{Reason: reasonTooLong}
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return "", &AddressError{Reason: reasonControl}
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return "", &AddressError{Reason: reasonASCII}
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", &AddressError{Reason: reasonNoAt}
	}
	// net/mail is the reference grammar; anything it reads as a different
	// addr-spec (display name, <>, comment, quotes) is not a bare address.
	parsed, err := mail.ParseAddress(s)
	if err != nil || parsed.Name != "" || parsed.Address != s {
		return "", &AddressError{Reason: reasonPlain}
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > maxLocalLen {
		return "", &AddressError{Reason: reasonLocalLen}
	}
	if reason := checkDomain(domain); reason != "" {
		return "", &AddressError{Reason: reason}
	}
	return local + "@" + lowerASCII(domain), nil
}

// checkDomain returns why domain is not a usable host name, or "".
func checkDomain(domain string) string {
	if strings.IndexByte(domain, '.') < 0 {
		if domain != "" && domain[0] == '[' {
			return reasonDomain
		}
		return reasonNoDot
	}
	var last string
	for label := range strings.SplitSeq(domain, ".") {
		if label == "" || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
			return reasonDomain
		}
		for i := 0; i < len(label); i++ {
			c := label[i] | 0x20 // ASCII lower-case for letters; digits and '-' are unchanged
			if !(c >= 'a' && c <= 'z' || label[i] >= '0' && label[i] <= '9' || label[i] == '-') {
				return reasonDomain
			}
		}
		last = label
	}
	if strings.Trim(last, "0123456789") == "" {
		return reasonDomain // "1.2.3.4" is an IP address, not a domain
	}
	return ""
}

// lowerASCII lower-cases ASCII letters, returning s itself when it has none
// (the common case, so Verify allocates nothing here).
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// addressKey is the store key and HMAC input for a normalised address: the
// whole address lower-cased. Mail systems treat local parts case-blind in
// practice, so "Bob@x.com" and "bob@x.com" share one mailbox; keying them
// apart would give an attacker a fresh failure budget and issue cap per
// spelling.
func addressKey(normalized string) string { return lowerASCII(normalized) }

// maxCodeInput bounds the typed code ParseCode looks at, so a pasted novel
// costs nothing.
const maxCodeInput = 64

// ParseCode accepts "123456", "123 456" or "123-456" and returns the digits.
// Surrounding whitespace and every ASCII space and hyphen are ignored;
// anything else that is not an ASCII digit, or the wrong number of digits,
// yields a *CodeError. No attempt is charged for a *CodeError.
func ParseCode(input string, length int) (string, error) {
	if length <= 0 || len(input) > maxCodeInput {
		return "", &CodeError{Length: length}
	}
	var buf [maxCodeInput]byte
	n := 0
	for _, r := range strings.TrimSpace(input) {
		switch {
		case r == ' ' || r == '-':
		case r >= '0' && r <= '9':
			buf[n] = byte(r)
			n++
		default:
			return "", &CodeError{Length: length}
		}
	}
	if n != length {
		return "", &CodeError{Length: length}
	}
	return string(buf[:n]), nil
}
