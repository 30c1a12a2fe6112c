package ui

import (
	"bytes"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/otplogin/otplogin/otp"
)

// These tests run the model in a real tea.Program, as a person would use
// it: keys in, terminal bytes out, the code read from the recording sender.

const waitLimit = 5 * time.Second

func startProgram(t *testing.T, m *Model, profile colorprofile.Profile) *teatest.TestModel {
	t.Helper()
	return teatest.NewTestModel(t, m,
		teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(profile)))
}

// waitScreen waits until the terminal shows text. The output is the
// renderer's byte stream, so sequences are stripped before looking.
func waitScreen(t *testing.T, tm *teatest.TestModel, text string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return strings.Contains(ansi.Strip(string(b)), text)
	}, teatest.WithDuration(waitLimit))
}

func finalModel(t *testing.T, tm *teatest.TestModel) *Model {
	t.Helper()
	return tm.FinalModel(t, teatest.WithFinalTimeout(waitLimit)).(*Model)
}

func TestProgramVerifies(t *testing.T) {
	e := newEnv(t, otp.Config{})
	tm := startProgram(t, New(e.options(Options{})), colorprofile.Ascii)
	waitScreen(t, tm, "Prove you own an email address")
	tm.Type(alice)
	tm.Send(enter)
	waitScreen(t, tm, "We sent a code to")
	tm.Type(e.sender.code(t, alice))
	tm.Send(enter)
	fm := finalModel(t, tm)
	if addr, ok := fm.Verified(); !ok || addr != alice || fm.Outcome() != "verified" {
		t.Fatalf("Verified() = %q, %v; Outcome() = %q", addr, ok, fm.Outcome())
	}
	teatest.RequireEqualOutput(t, []byte(ansi.Strip(fm.View().Content)))

	// The last frame leaves the alternate screen and ends its line, so the
	// success line is still in the terminal after the program exits.
	out, err := io.ReadAll(tm.FinalOutput(t))
	if err != nil {
		t.Fatal(err)
	}
	leave := bytes.Index(out, []byte("\x1b[?1049l"))
	line := bytes.Index(out, []byte("✓ Verified alice@example.com"))
	if leave < 0 || line < leave || !strings.Contains(ansi.Strip(string(out[line:])), "example.com\n") {
		t.Errorf("success line not left on the main screen: %q", out)
	}
}

func TestProgramCancel(t *testing.T) {
	e := newEnv(t, otp.Config{})
	tm := startProgram(t, New(e.options(Options{})), colorprofile.Ascii)
	tm.Type("half@exa")
	tm.Send(ctrlC)
	fm := finalModel(t, tm)
	if _, ok := fm.Verified(); ok || fm.Outcome() != "interrupted" {
		t.Fatalf("Outcome() = %q", fm.Outcome())
	}
	if e.sender.count() != 0 {
		t.Fatal("cancelling sent mail")
	}
}

// TestProgramExpiredThenResend lets the injected clock run past the code's
// life; the real one-second tick notices, and a new code works.
func TestProgramExpiredThenResend(t *testing.T) {
	e := newEnv(t, otp.Config{})
	tm := startProgram(t, New(e.options(Options{})), colorprofile.Ascii)
	tm.Type(alice)
	tm.Send(enter)
	waitScreen(t, tm, "We sent a code to")
	first := e.sender.code(t, alice)
	e.clock.Advance(5 * time.Minute)
	waitScreen(t, tm, "This code has expired.")
	tm.Type(first) // ignored: the code is dead
	tm.Send(ctrlR)
	waitScreen(t, tm, "A new code is on its way")
	if e.sender.count() != 2 {
		t.Fatalf("mails sent = %d, want 2", e.sender.count())
	}
	tm.Type(e.sender.code(t, alice))
	tm.Send(enter)
	fm := finalModel(t, tm)
	if _, ok := fm.Verified(); !ok {
		t.Fatalf("not verified:\n%s", ansi.Strip(fm.View().Content))
	}
}

func TestProgramRemoteSuccessStays(t *testing.T) {
	e := newEnv(t, otp.Config{})
	tm := startProgram(t, New(e.options(Options{Remote: true, Client: "198.51.100.4"})), colorprofile.Ascii)
	tm.Type(alice)
	tm.Send(enter)
	waitScreen(t, tm, "We sent a code to alice@example.com")
	tm.Type(e.sender.code(t, alice))
	tm.Send(enter)
	waitScreen(t, tm, "Verified alice@example.com")
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	fm := finalModel(t, tm)
	if fm.Outcome() != "verified" {
		t.Fatalf("Outcome() = %q", fm.Outcome())
	}
}

// TestProgramColour checks that colour is left to the renderer: truecolor
// terminals get it, and the Ascii profile (what NO_COLOR=1 selects) gets
// none, while bold survives.
func TestProgramColour(t *testing.T) {
	for _, tc := range []struct {
		profile   colorprofile.Profile
		wantColor bool
	}{
		{colorprofile.TrueColor, true},
		{colorprofile.Ascii, false},
	} {
		t.Run(tc.profile.String(), func(t *testing.T) {
			e := newEnv(t, otp.Config{})
			tm := startProgram(t, New(e.options(Options{})), tc.profile)
			var out bytes.Buffer
			teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
				out.Reset()
				out.Write(b)
				return strings.Contains(ansi.Strip(string(b)), "enter send code")
			}, teatest.WithDuration(waitLimit))
			if err := tm.Quit(); err != nil {
				t.Fatal(err)
			}
			tm.WaitFinished(t, teatest.WithFinalTimeout(waitLimit))
			hasColor := bytes.Contains(out.Bytes(), []byte("38;2;"))
			if hasColor != tc.wantColor {
				t.Errorf("truecolor foreground in output = %v, want %v", hasColor, tc.wantColor)
			}
		})
	}
}

// viewCounter counts the Views a Program asks for.
type viewCounter struct {
	*Model
	views *atomic.Int32
}

func (c viewCounter) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := c.Model.Update(msg)
	return c, cmd
}

func (c viewCounter) View() tea.View {
	c.views.Add(1)
	return c.Model.View()
}

// TestViewOncePerFrame checks the patched bubbletea (third_party) asks for
// a View when it draws a frame, not after every message: an address typed
// in one burst, 17 key messages, costs at most the frame drawn at once for
// the first key and one for the rest (stock bubbletea: 17 Views). FPS 1
// makes a frame interval longer than the burst on any machine.
func TestViewOncePerFrame(t *testing.T) {
	e := newEnv(t, otp.Config{})
	views := new(atomic.Int32)
	tm := teatest.NewTestModel(t, viewCounter{New(e.options(Options{})), views},
		teatest.WithInitialTermSize(80, 24),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii), tea.WithFPS(1)))
	waitScreen(t, tm, "Prove you own an email address")
	before := views.Load()
	tm.Type(alice)
	waitScreen(t, tm, alice)
	// At most 3: a test stalled for over a second can see one more frame.
	if n := views.Load() - before; n > 3 {
		t.Errorf("typing %d keys in a burst cost %d Views, want at most 3", len(alice), n)
	}
	tm.Send(esc)
	tm.WaitFinished(t, teatest.WithFinalTimeout(waitLimit))
}
