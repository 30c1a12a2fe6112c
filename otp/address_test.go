package otp_test

import (
	"errors"
	"net/mail"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/otplogin/otplogin/otp"
)

func TestNormalizeAddress(t *testing.T) {
	long := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com"
	for _, tc := range []struct {
		in, want, reason string
	}{
		{in: "alice@example.com", want: "alice@example.com"},
		{in: "  Alice.Smith+otp@Mail.Example.COM \t", want: "Alice.Smith+otp@mail.example.com"},
		{in: "o'brien@example.co.uk", want: "o'brien@example.co.uk"},
		{in: "x@xn--bcher-kva.example", want: "x@xn--bcher-kva.example"},
		{in: "a@1-2.example", want: "a@1-2.example"},
		{in: long, want: long},
		{in: "", reason: "is empty"},
		{in: " \t ", reason: "is empty"},
		{in: long + "m", reason: "is longer than 254 bytes"},
		{in: strings.Repeat("a", 300) + "@example.com", reason: "is longer than 254 bytes"},
		{in: "alice@example.com\r\nBcc: eve@example.com", reason: "contains control characters"},
		{in: "alice@example.com\n", reason: "contains control characters"},
		{in: "ali\x00ce@example.com", reason: "contains control characters"},
		{in: "\x1b[31malice@example.com", reason: "contains control characters"},
		{in: "alice@exa\x7fmple.com", reason: "contains control characters"},
		{in: "alice\u0085@example.com", reason: "contains control characters"},
		{in: "ali\tce@example.com", reason: "contains control characters"},
		{in: "alice\xff@example.com", reason: "is not valid UTF-8 text"},
		{in: "émile@example.com", reason: "must use only ASCII characters"},
		{in: "alice@bücher.example", reason: "must use only ASCII characters"},
		{in: "alice\u202e@example.com", reason: "must use only ASCII characters"},
		{in: "alice@example.com\u00a0", reason: "must use only ASCII characters"},
		{in: "alice.example.com", reason: "must contain an @, like name@example.com"},
		{in: "Alice <alice@example.com>", reason: "must be a plain address like name@example.com"},
		{in: "<alice@example.com>", reason: "must be a plain address like name@example.com"},
		{in: "alice@example.com (Alice)", reason: "must be a plain address like name@example.com"},
		{in: `"alice smith"@example.com`, reason: "must be a plain address like name@example.com"},
		{in: `"alice"@example.com`, reason: "must be a plain address like name@example.com"},
		{in: "=?utf-8?q?a?= <a@example.com>", reason: "must be a plain address like name@example.com"},
		{in: "alice@example.com, bob@example.com", reason: "must be a plain address like name@example.com"},
		{in: "alice@@example.com", reason: "must be a plain address like name@example.com"},
		{in: "a..b@example.com", reason: "must be a plain address like name@example.com"},
		{in: ".alice@example.com", reason: "must be a plain address like name@example.com"},
		{in: "@example.com", reason: "must be a plain address like name@example.com"},
		{in: "alice@", reason: "must be a plain address like name@example.com"},
		{in: "alice @example.com", reason: "must be a plain address like name@example.com"},
		{in: strings.Repeat("a", 65) + "@example.com", reason: "has a name before the @ longer than 64 bytes"},
		{in: "alice@localhost", reason: "must have a domain with a dot, like example.com"},
		{in: "alice@gmail", reason: "must have a domain with a dot, like example.com"},
		{in: "alice@[192.0.2.1]", reason: "has an invalid domain"},
		{in: "alice@192.0.2.1", reason: "has an invalid domain"},
		{in: "alice@-example.com", reason: "has an invalid domain"},
		{in: "alice@example-.com", reason: "has an invalid domain"},
		{in: "alice@ex_ample.com", reason: "has an invalid domain"},
		{in: "alice@" + strings.Repeat("b", 64) + ".com", reason: "has an invalid domain"},
		{in: "alice@example.com.", reason: "has an invalid domain"},
		{in: "alice@example.com>", reason: "must be a plain address like name@example.com"},
		{in: "alice@exa mple.com", reason: "must be a plain address like name@example.com"},
	} {
		got, err := otp.NormalizeAddress(tc.in)
		if tc.reason == "" {
			if err != nil || got != tc.want {
				t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		var ae *otp.AddressError
		if !errors.As(err, &ae) || ae.Reason != tc.reason || !errors.Is(err, otp.ErrInvalidAddress) || got != "" {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want reason %q", tc.in, got, err, tc.reason)
		}
	}
}

func TestParseCode(t *testing.T) {
	for _, tc := range []struct {
		in     string
		length int
		want   string // "" means *CodeError
	}{
		{"123456", 6, "123456"},
		{"123 456", 6, "123456"},
		{"123-456", 6, "123456"},
		{" 12 34 56\n", 6, "123456"},
		{"000000", 6, "000000"},
		{"1234-5678", 8, "12345678"},
		{"1234567890", 10, "1234567890"},
		{"12345", 6, ""},
		{"1234567", 6, ""},
		{"", 6, ""},
		{"123_456", 6, ""},
		{"12345a", 6, ""},
		{"١٢٣٤٥٦", 6, ""}, // Arabic-Indic digits
		{"１２３４５６", 6, ""}, // fullwidth digits
		{"123\x00456", 6, ""},
		{"+123456", 6, ""},
		{"123 456", 0, ""},
		{strings.Repeat(" ", 100) + "123456", 6, ""},
	} {
		got, err := otp.ParseCode(tc.in, tc.length)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("ParseCode(%q, %d) = %q, %v; want %q", tc.in, tc.length, got, err, tc.want)
			}
			continue
		}
		var ce *otp.CodeError
		if !errors.As(err, &ce) || ce.Length != tc.length || !errors.Is(err, otp.ErrInvalidCode) || got != "" {
			t.Errorf("ParseCode(%q, %d) = %q, %v; want *CodeError", tc.in, tc.length, got, err)
		}
	}
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, s := range []string{
		"alice@example.com", " Bob@Example.COM ", "a@b.co", "alice@example.com\r\nBcc: x@y.z",
		"a\x00@b.com", "\x1b[2J\x1b[31malice@example.com", strings.Repeat("x", 300) + "@example.com",
		"émile@exämple.com", "用户@例子.广告", "alice\u202e@example.com", "Bob <bob@example.com>",
		`"a b"@example.com`, "a@[127.0.0.1]", "a@localhost", "a@b@c.com", "\xff\xfe@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := otp.NormalizeAddress(in)
		if err != nil {
			var ae *otp.AddressError
			if !errors.As(err, &ae) || ae.Reason == "" || out != "" {
				t.Fatalf("NormalizeAddress(%q) = %q, %v: want a *AddressError with a reason", in, out, err)
			}
			return
		}
		if len(out) > 254 || !utf8.ValidString(out) {
			t.Fatalf("NormalizeAddress(%q) = %q: too long or not UTF-8", in, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || r >= utf8.RuneSelf {
				t.Fatalf("NormalizeAddress(%q) = %q: contains %U", in, out, r)
			}
		}
		if again, err := otp.NormalizeAddress(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		if a, err := mail.ParseAddress(out); err != nil || a.Name != "" || a.Address != out {
			t.Fatalf("accepted %q but net/mail reads it as %+v, %v", out, a, err)
		}
		if !strings.EqualFold(strings.Trim(in, " \t"), out) {
			t.Fatalf("%q normalised to %q: more than trim and case changed", in, out)
		}
	})
}

func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"123456", "123 456", "123-456", " 1-2 3-4 5-6 ", "١٢٣٤٥٦", "12345\x00", "\r\n123456", "1234567890"} {
		f.Add(s, 6)
	}
	f.Fuzz(func(t *testing.T, in string, length int) {
		out, err := otp.ParseCode(in, length)
		if err != nil {
			var ce *otp.CodeError
			if !errors.As(err, &ce) || out != "" {
				t.Fatalf("ParseCode(%q, %d) = %q, %v: want *CodeError", in, length, out, err)
			}
			return
		}
		if len(out) != length {
			t.Fatalf("ParseCode(%q, %d) = %q: wrong length", in, length, out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] < '0' || out[i] > '9' {
				t.Fatalf("ParseCode(%q, %d) = %q: not ASCII digits", in, length, out)
			}
		}
		if again, err := otp.ParseCode(out, length); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
		if stripped := strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(in)); stripped != out {
			t.Fatalf("ParseCode(%q) = %q, want the digits %q", in, out, stripped)
		}
	})
}
