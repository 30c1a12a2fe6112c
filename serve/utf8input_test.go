package serve

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func TestValidUTF8(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"ascii and escapes", "alice@example.com\r\x1b[A\x1b[<0;1;1M", "alice@example.com\r\x1b[A\x1b[<0;1;1M"},
		{"the five bytes", "\x9bM:]m", "M:]m"},
		{"every C1 byte", "a\x80\x8f\x90\x9b\x9c\x9d\x9e\x9fb", "ab"},
		{"text", "ünï 漢字 😀", "ünï 漢字 😀"},
		{"invalid UTF-8", "\xff\xfe\xc3\x28\xe2\x82\xed\xa0\x80x", "(x"},
		{"a cut rune at the end", "x\xe2\x82", "x"},
		{"NUL stays", "\x00", "\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per read too: runes cut across reads must survive.
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				got, err := io.ReadAll(&validUTF8{r: r})
				if err != nil || string(got) != tc.want {
					t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
				}
			}
		})
	}
}

// FuzzValidUTF8: whatever comes in, what goes out is valid UTF-8, keeps
// every ASCII byte in order, and keeps the whole input when it was valid.
func FuzzValidUTF8(f *testing.F) {
	for _, s := range []string{"", "\x9bM:]m", "ünï", "\xe2\x82", "a\x80b"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		r := io.Reader(strings.NewReader(string(in)))
		if chunk%2 == 1 {
			r = iotest.OneByteReader(r)
		}
		got, err := io.ReadAll(&validUTF8{r: r})
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(got) {
			t.Fatalf("%q gave invalid %q", in, got)
		}
		if utf8.Valid(in) && string(got) != string(in) {
			t.Fatalf("valid %q became %q", in, got)
		}
		if ascii(got) != ascii(in) {
			t.Fatalf("%q lost ASCII: %q", in, got)
		}
	})
}

func ascii(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c < utf8.RuneSelf {
			s.WriteByte(c)
		}
	}
	return s.String()
}
