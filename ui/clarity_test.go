package ui

import (
	"bytes"
	"io"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/otplogin/otplogin/otp"
)

// These tests cover what got in a new user's way (issue 15): each failed
// before its fix.

// fieldText is what follows prompt on the screen's line that holds it.
func fieldText(t *testing.T, screen, prompt string) string {
	t.Helper()
	for line := range strings.SplitSeq(screen, "\n") {
		if _, after, ok := strings.Cut(line, prompt); ok {
			return after
		}
	}
	t.Fatalf("no %q on the screen:\n%s", prompt, screen)
	return ""
}

// asSeen is the view as a terminal with profile p shows it, as text.
func asSeen(t *testing.T, view string, p colorprofile.Profile) string {
	t.Helper()
	var out bytes.Buffer
	if _, err := io.WriteString(&colorprofile.Writer{Forward: &out, Profile: p}, view); err != nil {
		t.Fatal(err)
	}
	return ansi.Strip(out.String())
}

// TestEmptyFieldsLookEmptyWithoutColour: without colour (NO_COLOR=1 selects
// the Ascii profile, TERM=dumb no styling at all) a placeholder reads as
// typed text, so an empty field must show nothing after its prompt.
func TestEmptyFieldsLookEmptyWithoutColour(t *testing.T) {
	for _, p := range []colorprofile.Profile{colorprofile.Ascii, colorprofile.NoTTY} {
		t.Run(p.String(), func(t *testing.T) {
			e := newEnv(t, otp.Config{})
			tm := startProgram(t, New(e.options(Options{})), p)
			var screen string
			teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
				screen = ansi.Strip(string(b))
				return strings.Contains(screen, "enter send code")
			}, teatest.WithDuration(waitLimit))
			if f := fieldText(t, screen, emailPrompt); strings.TrimSpace(f) != "" {
				t.Errorf("the empty email field shows %q", f)
			}
			if err := tm.Quit(); err != nil {
				t.Fatal(err)
			}
			tm.WaitFinished(t, teatest.WithFinalTimeout(waitLimit))

			d := newDriver(t, e.options(Options{}))
			d.toCode()
			if f := fieldText(t, asSeen(t, d.m.View().Content, p), codePrompt); strings.TrimSpace(f) != "" {
				t.Errorf("the empty code field shows %q", f)
			}
		})
	}
}

// TestMessagesClearWhenInputChanges: what was said about the last attempt
// goes as soon as the person changes what they typed.
func TestMessagesClearWhenInputChanges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(d *driver, e *env) // leaves msg on screen
		msg    string
		change tea.Msg
	}{
		{"short code, then the rest pasted", func(d *driver, _ *env) {
			d.toCode()
			d.typ("123")
			d.send(enter)
		}, "Code must be 6 digits.", tea.PasteMsg{Content: "456"}},
		{"wrong code, then a digit typed", func(d *driver, e *env) {
			d.toCode()
			d.typ(wrong(e.sender.code(d.t, alice)))
			d.send(enter)
		}, "Incorrect code.", tea.KeyPressMsg{Code: '1', Text: "1"}},
		{"wrong code, then a code pasted", func(d *driver, e *env) {
			d.toCode()
			d.typ(wrong(e.sender.code(d.t, alice)))
			d.send(enter)
		}, "Incorrect code.", tea.PasteMsg{Content: "123 456"}},
		{"paste refused, then a key typed", func(d *driver, _ *env) {
			d.send(tea.PasteMsg{Content: "a\x1b[2Jb@example.com"})
		}, "Pasted text ignored", tea.KeyPressMsg{Code: 'a', Text: "a"}},
		{"mail down, then the address edited", func(d *driver, e *env) {
			e.sender.setFail(smtpFailure{})
			d.typ(alice)
			d.send(enter)
			e.sender.setFail(nil)
		}, "Mail is not working", tea.KeyPressMsg{Code: tea.KeyBackspace}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, otp.Config{})
			d := newDriver(t, e.options(Options{}))
			tc.before(d, e)
			d.wantView(tc.msg)
			d.send(tc.change)
			d.wantNotView(tc.msg)
		})
	}

	// Keys that change nothing leave the message.
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.toCode()
	d.typ("123")
	d.send(enter)
	d.send(tea.KeyPressMsg{Code: tea.KeyLeft})
	d.send(tea.KeyPressMsg{Code: 'x', Text: "x"}) // not a digit: ignored
	d.wantView("Code must be 6 digits.")
}

// TestResizeKeepsCursorInSight: after the window shrinks, a long address
// shows its end, where the cursor is, not its start.
func TestResizeKeepsCursorInSight(t *testing.T) {
	const addr = "someone.with.a.rather.long.name@mail.example.com"
	e := newEnv(t, otp.Config{})
	for _, screen := range []string{"email", "code"} {
		t.Run(screen, func(t *testing.T) {
			d := newDriver(t, e.options(Options{}))
			typed, prompt := addr, emailPrompt
			if screen == "code" {
				d.toCode()
				typed, prompt = "123456789012", codePrompt
				d.send(tea.WindowSizeMsg{Width: 20, Height: 12})
			}
			d.typ(typed)
			for _, size := range [][2]int{{40, 12}, {30, 12}, {80, 24}, {12, 12}} {
				d.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
				f := strings.TrimRight(fieldText(t, d.view(), prompt), " ")
				if f == "" || !strings.HasSuffix(typed, f) || strings.Contains(f, "…") {
					t.Errorf("%dx%d: the field shows %q, not the end of %q", size[0], size[1], f, typed)
				}
			}
		})
	}
}

// TestTooLongSaysSo: an address longer than an address can be is called
// too long as it is typed, and on Enter, instead of the field stopping
// without a word and then missing the @ that was cut off.
func TestTooLongSaysSo(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	const tooLong = "The address is too long: an email address has at most 254 characters."
	d.typ(strings.Repeat("a", 250))
	d.wantNotView("too long")
	d.typ("@example.com")
	d.wantView(tooLong)
	d.send(enter)
	d.wantView(tooLong)
	d.wantNotView("must contain an @")
	if e.sender.count() != 0 {
		t.Fatal("a code was requested for an address that is too long")
	}
	// Deleting back to the limit mends it.
	for range 8 {
		d.send(tea.KeyPressMsg{Code: tea.KeyBackspace})
	}
	d.wantNotView("too long")
}

// TestFailureNamesLogFile: locally, a failure whose reason only the log
// has says where the log is; an SSH visitor is never shown the path.
func TestFailureNamesLogFile(t *testing.T) {
	const logFile = "/home/me/.cache/otplogin/otplogin.log"
	const named = "The log file " + logFile + " says why."
	for _, tc := range []struct {
		name   string
		remote bool
		fault  func(e *env)
		after  func(d *driver, e *env) // the failing step
		want   string
	}{
		{"mail down", false, func(e *env) { e.sender.setFail(smtpFailure{}) }, nil,
			"Mail is not working right now. Try again later. " + named},
		{"store down", false, storeDown, nil, "Service temporarily unavailable, try again. " + named},
		{"store down on verify", false, nil, func(d *driver, e *env) {
			storeDown(e)
			d.typ("123456")
			d.send(enter)
		}, "Service temporarily unavailable, try again. " + named},
		{"mail down over SSH", true, func(e *env) { e.sender.setFail(smtpFailure{}) }, nil,
			"Mail is not working right now. Try again later."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, otp.Config{})
			if tc.fault != nil {
				tc.fault(e)
			}
			d := newDriver(t, e.options(Options{LogFile: logFile, Remote: tc.remote}))
			d.typ(alice)
			d.send(enter)
			if tc.after != nil {
				tc.after(d, e)
			}
			d.wantView(strings.Fields(tc.want)[0])
			if got := strings.Join(strings.Fields(d.view()), " "); !strings.Contains(got, tc.want) {
				t.Errorf("screen lacks %q:\n%s", tc.want, d.view())
			}
			if tc.remote && strings.Contains(d.view(), "otplogin.log") {
				t.Errorf("an SSH visitor is shown the log file:\n%s", d.view())
			}
		})
	}
}

func storeDown(e *env) {
	e.store.mu.Lock()
	e.store.down = true
	e.store.mu.Unlock()
}
