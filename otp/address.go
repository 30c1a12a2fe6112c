package otp

import (
	"strings"
	"unicode"
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
// inner hyphens, a non-numeric top-level label; at most 254 bytes in all.
// That grammar is a strict subset of what net/mail.ParseAddress reads as
// exactly the input addr-spec (FuzzNormalizeAddress checks it), checked by
// hand because Verify normalises on every attempt and the parser would be
// its largest cost after the HMAC.
//
// Refused on purpose: display names, angle brackets, comments and quoted
// local parts (a code goes to exactly the string the user typed); single-label
// domains such as "localhost" (no public mail host has one, and "name@gmail"
// is a typo); domain literals; and non-ASCII addresses, because without IDNA
// and Unicode normalisation one mailbox would have many spellings, each with
// its own limits, and most relays cannot deliver to them (no SMTPUTF8).
func NormalizeAddress(address string) (string, error) {
	addr, _, err := normalize(address)
	return addr, err
}

// normalize is NormalizeAddress that also returns the address's key: the
// store key and HMAC input, which is the whole address lower-cased. Mail
// systems treat local parts case-blind in practice, so "Bob@x.com" and
// "bob@x.com" share one mailbox; keying them apart would give an attacker a
// fresh failure budget and issue cap per spelling. One pass finds both,
// since Verify runs this on every attempt.
func normalize(address string) (addr, key string, err error) {
	s := trimBlanks(address)
	if s == "" {
		return "", "", &AddressError{Reason: reasonEmpty}
	}
	if len(s) > maxAddressLen {
		return "", "", &AddressError{Reason: reasonTooLong}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return "", "", &AddressError{Reason: reasonControl}
		} else if c >= utf8.RuneSelf {
			return "", "", &AddressError{Reason: nonASCIIReason(s)}
		}
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return "", "", &AddressError{Reason: reasonNoAt}
	}
	local, domain := s[:at], s[at+1:]
	ok, upperLocal := isDotAtom(local)
	if !ok {
		return "", "", &AddressError{Reason: reasonPlain}
	}
	if len(local) > maxLocalLen {
		return "", "", &AddressError{Reason: reasonLocalLen}
	}
	reason, upperDomain := checkDomain(domain)
	if reason != "" {
		return "", "", &AddressError{Reason: reason}
	}
	addr = s
	if upperDomain {
		addr = local + "@" + strings.ToLower(domain)
	}
	key = addr
	if upperLocal {
		key = strings.ToLower(addr)
	}
	return addr, key, nil
}

// trimBlanks trims the spaces and tabs a paste brings along. Other
// whitespace (CR, LF, NBSP) is refused, not trimmed: it is not a typo.
func trimBlanks(s string) string {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}

// nonASCIIReason says why s, which has a byte >= 0x80, is refused: the most
// specific of invalid UTF-8, a control character anywhere, or non-ASCII.
func nonASCIIReason(s string) string {
	if !utf8.ValidString(s) {
		return reasonUTF8
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return reasonControl
		}
	}
	return reasonASCII
}

// isDotAtom reports whether s is an RFC 5322 dot-atom: atext runs joined by
// single dots, and whether it has upper-case letters. It excludes quoted
// strings, which would let two spellings name one mailbox.
func isDotAtom(s string) (ok, upper bool) {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false, false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			upper = true
		case c == '.':
			if s[i-1] == '.' {
				return false, false
			}
		default:
			switch c {
			case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '/', '=', '?', '^', '_', '`', '{', '|', '}', '~':
			default:
				return false, false
			}
		}
	}
	return true, upper
}

// checkDomain returns why domain is not a usable host name, or "", and
// whether it has upper-case letters.
func checkDomain(domain string) (reason string, upper bool) {
	if domain == "" {
		return reasonPlain, false
	}
	dot, digitsOnly := false, true // digitsOnly: in the current label
	start := 0
	for i := 0; i <= len(domain); i++ {
		if i == len(domain) || domain[i] == '.' {
			label := domain[start:i]
			if label == "" || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
				return reasonDomain, false
			}
			if i == len(domain) {
				break
			}
			dot, digitsOnly, start = true, true, i+1
			continue
		}
		switch c := domain[i]; {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z', c == '-':
			digitsOnly = false
		case 'A' <= c && c <= 'Z':
			digitsOnly, upper = false, true
		case c == ' ', c == '(', c == ')', c == '<', c == '>', c == '"', c == ',', c == ';', c == ':', c == '\\':
			return reasonPlain, false // a display name, comment or list
		default:
			return reasonDomain, false
		}
	}
	switch {
	case !dot:
		return reasonNoDot, false
	case digitsOnly:
		return reasonDomain, false // "192.0.2.1" is an IP address, not a domain
	}
	return "", upper
}

// maxCodeInput bounds the typed code ParseCode looks at, so a pasted novel
// costs nothing.
const maxCodeInput = 64

// ParseCode accepts "123456", "123 456" or "123-456" and returns the digits.
// Surrounding whitespace and every ASCII space and hyphen are ignored;
// anything else that is not an ASCII digit, or the wrong number of digits,
// yields a *CodeError. No attempt is charged for a *CodeError.
func ParseCode(input string, length int) (string, error) {
	var buf [maxCodeInput]byte
	digits, err := parseCode(input, length, &buf)
	return string(digits), err
}

// parseCode is ParseCode writing the digits into buf, so Verify allocates
// nothing for them.
func parseCode(input string, length int, buf *[maxCodeInput]byte) ([]byte, error) {
	if length <= 0 || len(input) > maxCodeInput {
		return nil, &CodeError{Length: length}
	}
	n := 0
	for _, r := range strings.TrimSpace(input) {
		switch {
		case r == ' ' || r == '-':
		case r >= '0' && r <= '9':
			buf[n] = byte(r)
			n++
		default:
			return nil, &CodeError{Length: length}
		}
	}
	if n != length {
		return nil, &CodeError{Length: length}
	}
	return buf[:n], nil
}
