package ui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/otplogin/otplogin/otp"
)

// TestEmbeddedReportsDone: an Embedded model ends every way a login ends
// with one DoneMsg and never quits the program; after it, it takes no more
// messages, so its timers' chains end.
func TestEmbeddedReportsDone(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(d *driver, e *env)
		want DoneMsg
	}{
		{"verified", func(d *driver, e *env) {
			d.toCode()
			d.typ(e.sender.code(t, alice))
			d.send(enter)
		}, DoneMsg{Address: alice, Verified: true, Outcome: "verified"}},
		{"esc on the email screen", func(d *driver, _ *env) {
			d.send(esc)
		}, DoneMsg{Outcome: "cancelled"}},
		{"ctrl+c on the code screen", func(d *driver, _ *env) {
			d.toCode()
			d.send(ctrlC)
		}, DoneMsg{Outcome: "interrupted"}},
		{"ctrl+c while sending", func(d *driver, _ *env) {
			d.typ(alice)
			_ = d.update(enter) // the request is left out: ctrl+c comes first
			d.wantScreen(ScreenSending)
			d.send(ctrlC)
		}, DoneMsg{Outcome: "interrupted"}},
	} {
		for _, remote := range []bool{false, true} {
			t.Run(tc.name+map[bool]string{false: "", true: " remote"}[remote], func(t *testing.T) {
				e := newEnv(t, otp.Config{})
				d := newDriver(t, e.options(Options{Embedded: true, Remote: remote}))
				tc.run(d, e)
				if d.quit {
					t.Fatal("an Embedded model quit the program")
				}
				if len(d.done) != 1 || d.done[0] != tc.want {
					t.Fatalf("reported %+v, want one %+v", d.done, tc.want)
				}
				if cmd := d.update(tickMsg{seq: d.m.codeTickSeq()}); cmd != nil {
					t.Error("a finished model still runs its countdown")
				}
				if cmd := d.update(ctrlC); cmd != nil {
					t.Error("a finished model reported again")
				}
			})
		}
	}
}

// codeTickSeq is the current countdown chain's id, 0 without a code
// screen.
func (m *Model) codeTickSeq() uint64 {
	if m.code == nil {
		return 0
	}
	return m.code.tickSeq
}

// TestEmbeddedView: an Embedded model never claims the terminal (no
// alternate screen, no window title) on any screen, and draws within the
// box SetSize gives it.
func TestEmbeddedView(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{Embedded: true, DevOutbox: "/tmp/outbox"}))
	check := func(w, h int) {
		t.Helper()
		v := d.m.View()
		if v.AltScreen || v.WindowTitle != "" {
			t.Errorf("on %q: AltScreen %v, WindowTitle %q", d.m.Screen(), v.AltScreen, v.WindowTitle)
		}
		lines := strings.Split(v.Content, "\n")
		if len(lines) > h {
			t.Errorf("on %q in %dx%d: %d lines", d.m.Screen(), w, h, len(lines))
		}
		for _, l := range lines {
			if ansi.StringWidth(l) > w {
				t.Errorf("on %q in %dx%d: line %q is wider", d.m.Screen(), w, h, ansi.Strip(l))
			}
		}
	}
	for _, size := range [][2]int{{80, 24}, {50, 12}, {30, 6}} {
		d.m.SetSize(size[0], size[1])
		check(size[0], size[1])
	}
	d.m.SetSize(50, 12)
	d.toCode()
	check(50, 12)
	d.send(tea.WindowSizeMsg{Width: 36, Height: 8}) // forwarded by a parent
	check(36, 8)
	d.typ(e.sender.code(t, alice))
	d.send(enter)
	d.wantScreen(ScreenVerified)
	check(36, 8)
	d.wantView("Verified alice@example.com")
}

// TestHandoffQuitsAtOnce: with Handoff, a Remote login quits as soon as
// the code is accepted and leaves the success line alone, inline, since
// something else takes the terminal over.
func TestHandoffQuitsAtOnce(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{Remote: true, Handoff: true, Client: "203.0.113.9"}))
	d.toCode()
	d.typ(e.sender.code(t, alice))
	d.send(enter)
	if !d.quit || len(d.timers) != 1 { // the one timer: the code screen's last tick
		t.Fatalf("quit = %v, timers %v; want a quit and no success timer", d.quit, d.timers)
	}
	v := d.m.View()
	if v.AltScreen || d.view() != "✓ Verified alice@example.com\n" {
		t.Errorf("last frame %q (alternate screen %v)", d.view(), v.AltScreen)
	}
}

// signup is a parent program with the login as its second step: a name,
// then the email address, then a welcome. It stands for what an importer
// writes.
type signup struct {
	login  *Model
	step   int // 0 name, 1 login, 2 welcome
	name   string
	result DoneMsg
	height int
}

func (s *signup) Init() tea.Cmd { return nil }

func (s *signup) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		s.height = msg.Height
		s.login.SetSize(msg.Width, msg.Height-1) // one line for the header
		return s, nil
	case DoneMsg:
		s.result, s.step = msg, 2
		return s, nil
	case tea.KeyPressMsg:
		switch {
		case s.step == 0 && msg.Code == tea.KeyEnter:
			s.step = 1
			return s, s.login.Init()
		case s.step == 0:
			s.name += msg.Text
			return s, nil
		case s.step == 2 && msg.Text == "q":
			return s, tea.Quit
		}
	}
	if s.step == 1 {
		_, cmd := s.login.Update(msg)
		return s, cmd
	}
	return s, nil
}

func (s *signup) View() tea.View {
	var body string
	switch s.step {
	case 0:
		body = "Name: " + s.name
	case 1:
		body = s.login.View().Content
	case 2:
		if s.result.Verified {
			body = "Welcome, " + s.name + " <" + s.result.Address + ">. Press q."
		} else {
			body = "Not verified (" + s.result.Outcome + "). Press q."
		}
	}
	v := tea.NewView("Sign-up, step " + string(rune('1'+s.step)) + " of 3\n" + body)
	v.AltScreen = true
	return v
}

// TestEmbeddedInParentProgram runs the login as the middle step of a
// parent program in a real tea.Program: the parent gets DoneMsg with the
// address, keeps running, and draws its own next step.
func TestEmbeddedInParentProgram(t *testing.T) {
	e := newEnv(t, otp.Config{})
	parent := &signup{login: New(e.options(Options{Embedded: true}))}
	tm := teatest.NewTestModel(t, parent,
		teatest.WithInitialTermSize(60, 20),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	tm.Type("Ada")
	tm.Send(enter)
	waitScreen(t, tm, "Prove you own an email address")
	tm.Type(alice)
	tm.Send(enter)
	waitScreen(t, tm, "We sent a code to")
	tm.Type(e.sender.code(t, alice))
	tm.Send(enter)
	waitScreen(t, tm, "Welcome, Ada <alice@example.com>")
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	fm := tm.FinalModel(t, teatest.WithFinalTimeout(waitLimit)).(*signup)
	if fm.result != (DoneMsg{Address: alice, Verified: true, Outcome: "verified"}) {
		t.Errorf("parent got %+v", fm.result)
	}
	if got := fm.login.View().Content; len(strings.Split(got, "\n")) > fm.height-1 {
		t.Errorf("login drew %d lines in a box of %d", len(strings.Split(got, "\n")), fm.height-1)
	}
}

// TestEmbeddedCancelInParentProgram: Esc in the embedded login reports a
// cancelled login to the parent, which goes on.
func TestEmbeddedCancelInParentProgram(t *testing.T) {
	e := newEnv(t, otp.Config{})
	parent := &signup{login: New(e.options(Options{Embedded: true}))}
	tm := teatest.NewTestModel(t, parent, teatest.WithInitialTermSize(60, 20))
	tm.Send(enter)
	waitScreen(t, tm, "Prove you own an email address")
	tm.Send(esc)
	waitScreen(t, tm, "Not verified (cancelled)")
	tm.Send(tea.KeyPressMsg{Code: 'q', Text: "q"})
	tm.WaitFinished(t, teatest.WithFinalTimeout(waitLimit))
}
