package ui

import (
	"strings"
	"testing"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/otplogin/otplogin/otp"
)

// hasUnsafe reports a rune that must never reach the terminal from input.
func hasUnsafe(s string) (rune, bool) {
	for _, r := range s {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar) {
			return r, true
		}
	}
	return 0, false
}

func TestHostileEmailInput(t *testing.T) {
	long := strings.Repeat("a", 290) + "@example.com" // 302 bytes
	for _, tc := range []struct {
		name      string
		msg       tea.Msg
		wantValue string // "" means: don't check
		wantText  []string
		maxLen    int // runes the input may hold: one over the limit, to say it is too long
	}{
		{"escape sequence typed", tea.KeyPressMsg{Code: '[', Text: "\x1b[31mred\x1b]0;pwned\x07"},
			"", []string{"Typed text ignored: it contains control characters."}, 0},
		{"escape sequence pasted", tea.PasteMsg{Content: "\x1b[2J\x1b[Halice@example.com"},
			"", []string{"Pasted text ignored: it contains control characters."}, 0},
		{"NUL", tea.PasteMsg{Content: "ali\x00ce@example.com"},
			"", []string{"Pasted text ignored: it contains control characters."}, 0},
		{"CR LF around", tea.PasteMsg{Content: "\r\nalice@example.com\r\n"},
			"alice@example.com", nil, 0},
		{"CR LF inside", tea.PasteMsg{Content: "alice@exa\r\nmple.com"},
			"alice@exa  mple.com", []string{"The address must be a plain address"}, 0},
		{"bidi override", tea.PasteMsg{Content: "moc.elpmaxe@\u202eecila"},
			"", []string{"Pasted text ignored: it must use only ASCII characters."}, 0},
		{"C1 control", tea.PasteMsg{Content: "alice\u009b31m@example.com"},
			"", []string{"Pasted text ignored: it contains control characters."}, 0},
		{"invalid UTF-8", tea.PasteMsg{Content: "alice\xff\xfe@example.com"},
			"", []string{"Pasted text ignored: it is not valid UTF-8 text."}, 0},
		{"10 KB hostile paste", tea.PasteMsg{Content: strings.Repeat("x\x1b", 5*1024)},
			"", []string{"Pasted text ignored: it is longer than 254 bytes."}, 0},
		{"10 KB paste", tea.PasteMsg{Content: strings.Repeat("x", 10*1024)},
			"", []string{"The address is too long: an email address has at most 254 characters."}, 255},
		{"300-byte address", tea.PasteMsg{Content: long},
			"", []string{"The address is too long"}, 255},
		{"unicode address", tea.PasteMsg{Content: "émile@exämple.com"},
			"émile@exämple.com", []string{"The address must use only ASCII characters."}, 0},
		{"wide runes", tea.PasteMsg{Content: strings.Repeat("漢", 300)},
			"", []string{"The address is too long"}, 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, otp.Config{})
			d := newDriver(t, e.options(Options{}))
			d.send(tc.msg)
			v := d.m.email.input.Value()
			if tc.wantValue != "" && v != tc.wantValue {
				t.Errorf("value = %q, want %q", v, tc.wantValue)
			}
			if r, bad := hasUnsafe(v); bad {
				t.Errorf("value holds %U: %q", r, v)
			}
			if tc.maxLen > 0 && len([]rune(v)) > tc.maxLen {
				t.Errorf("value holds %d runes, limit %d", len([]rune(v)), tc.maxLen)
			}
			d.send(enter)
			for _, s := range tc.wantText {
				d.wantView(s)
			}
			if d.m.on != ScreenEmail && tc.name != "CR LF around" {
				t.Fatalf("hostile input was sent: screen %q", d.m.on)
			}
			for _, size := range [][2]int{{80, 24}, {40, 10}, {10, 3}} {
				d.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
				view := d.m.View().Content
				if r, bad := hasUnsafe(ansi.Strip(view)); bad {
					t.Errorf("%dx%d view holds %U", size[0], size[1], r)
				}
				checkFits(t, view, size[0], size[1])
			}
		})
	}
}

func TestEmailValidationTiming(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.typ("alice")
	d.wantNotView("The address") // half typed: no scolding yet
	d.send(enter)
	d.wantView("✗ The address must contain an @, like name@example.com.")
	d.typ("@example")
	d.wantView("The address must have a domain with a dot")
	d.typ(".com")
	d.wantNotView("The address")
	if e.sender.count() != 0 {
		t.Fatal("an invalid address was sent")
	}

	d2 := newDriver(t, e.options(Options{}))
	d2.send(enter)
	d2.wantView("Type your email address, then press enter.")
}

func TestCodeInput(t *testing.T) {
	e := newEnv(t, otp.Config{})
	for _, tc := range []struct {
		name string
		in   []tea.Msg
		want string
	}{
		{"typed with separators", keys("123 456"), "123456"},
		{"typed with dash", keys("123-456"), "123456"},
		{"letters ignored", keys("1a2b3c"), "123"},
		{"pasted with space", []tea.Msg{tea.PasteMsg{Content: "123 456"}}, "123456"},
		{"pasted with dash and newline", []tea.Msg{tea.PasteMsg{Content: "123-456\n"}}, "123456"},
		{"pasted escapes", []tea.Msg{tea.PasteMsg{Content: "\x1b[31m12\x1b[0m34\x0056"}}, "311203456"},
		{"pasted from the mail", []tea.Msg{tea.PasteMsg{Content: "Your code: 123 456\r\n"}}, "123456"},
		{"huge paste", []tea.Msg{tea.PasteMsg{Content: strings.Repeat("9", 10_000)}}, "999999999999"},
		{"unicode digits ignored", keys("١٢٣456"), "456"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, e.options(Options{}))
			d.typ(tc.name[:1] + "x@example.com")
			d.send(enter)
			d.wantScreen(ScreenCode)
			for _, m := range tc.in {
				d.send(m)
			}
			if got := d.m.code.input.Value(); got != tc.want {
				t.Fatalf("code input = %q, want %q", got, tc.want)
			}
		})
	}
}

func keys(s string) []tea.Msg {
	var msgs []tea.Msg
	for _, r := range s {
		msgs = append(msgs, tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	return msgs
}

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		removed  bool
	}{
		{"alice@example.com", "alice@example.com", false},
		{"a\tb\nc\rd", "a b c d", false},
		{"\x1b[31m", "[31m", true},
		{"a\u200bb", "ab", true},
		{"a\u2028b", "a b", false},
		{"\xff", "", true},
		{"é", "é", false},
		{"\u009b", "", true},
	} {
		got, removed := clean(tc.in)
		if got != tc.want || removed != tc.removed {
			t.Errorf("clean(%q) = %q, %v; want %q, %v", tc.in, got, removed, tc.want, tc.removed)
		}
	}
}

// FuzzInput sends arbitrary text to both inputs, typed and pasted: nothing
// unsafe may reach the value or the screen, and the screen must fit.
func FuzzInput(f *testing.F) {
	for _, s := range []string{"alice@example.com", "\x1b[31m", "123 456", "\u202e", "\xff", "漢字@例え.jp", "\r\n\t"} {
		f.Add(s)
	}
	e := newEnv(f, otp.Config{})
	f.Fuzz(func(t *testing.T, s string) {
		d := newDriver(t, e.options(Options{}))
		d.send(tea.WindowSizeMsg{Width: 40, Height: 10})
		for _, msg := range []tea.Msg{tea.PasteMsg{Content: s}, tea.KeyPressMsg{Code: 'x', Text: s}} {
			d.send(msg)
			if r, bad := hasUnsafe(d.m.email.input.Value()); bad {
				t.Fatalf("value holds %U after %T %q", r, msg, s)
			}
			if n := len([]rune(d.m.email.input.Value())); n > maxAddress+1 {
				t.Fatalf("value holds %d runes", n)
			}
			view := d.m.View().Content
			if r, bad := hasUnsafe(ansi.Strip(view)); bad {
				t.Fatalf("view holds %U after %T %q", r, msg, s)
			}
			checkFits(t, view, 40, 10)
		}
	})
}
