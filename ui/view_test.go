package ui

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/otplogin/otplogin/otp"
)

// checkFits fails unless view is at most w cells wide and h lines tall.
func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) > h {
		t.Errorf("%dx%d: view has %d lines:\n%s", w, h, len(lines), ansi.Strip(view))
	}
	for i, l := range lines {
		if lw := ansi.StringWidth(l); lw > w {
			t.Errorf("%dx%d: line %d is %d wide: %q", w, h, i, lw, ansi.Strip(l))
		}
	}
}

// screens puts a model on each screen, with the longest texts it can show.
func screens(t *testing.T) map[string]*driver {
	t.Helper()
	out := map[string]*driver{}
	opts := Options{DevOutbox: "/home/someone/with/a/very/long/path/to/the/otplogin/dev/outbox"}
	longAddr := strings.Repeat("l", 64) + "@" + strings.Repeat("d", 60) + ".example.com"

	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(opts))
	d.typ("not an address at all, with spaces")
	d.send(enter)
	out["email error"] = d

	d = newDriver(t, e.options(opts))
	d.typ(longAddr)
	_ = d.update(enter)
	out["sending"] = d

	d = newDriver(t, e.options(opts))
	d.typ(longAddr)
	d.send(enter)
	d.typ("000000")
	d.send(enter)
	out["code wrong"] = d

	e2 := newEnv(t, otp.Config{Limits: otp.Limits{AddressIssues: 1}})
	d = newDriver(t, e2.options(Options{Remote: true}))
	d.typ(longAddr)
	d.send(enter)
	e2.clock.Advance(time.Minute)
	d.send(ctrlR)
	out["code limited"] = d

	d = newDriver(t, e.options(Options{Remote: true}))
	d.typ("x" + longAddr[1:])
	d.send(enter)
	d.typ(e.sender.code(t, "x"+longAddr[1:]))
	d.send(enter)
	out["done remote"] = d
	return out
}

func TestLayoutFits(t *testing.T) {
	sizes := [][2]int{{1, 1}, {10, 3}, {20, 5}, {40, 10}, {41, 9}, {80, 24}, {300, 100}}
	for name, d := range screens(t) {
		t.Run(name, func(t *testing.T) {
			for _, s := range sizes {
				d.send(tea.WindowSizeMsg{Width: s[0], Height: s[1]})
				checkFits(t, d.m.View().Content, s[0], s[1])
			}
		})
	}
}

// TestLayoutKeepsInput checks that the least important lines give way
// first: at 10x3 the input is still there, at 40x10 the latest message too.
func TestLayoutKeepsInput(t *testing.T) {
	d := screens(t)["code wrong"]
	d.send(tea.WindowSizeMsg{Width: 10, Height: 3})
	d.wantView("Code:")
	d.send(tea.WindowSizeMsg{Width: 40, Height: 10})
	d.wantView("Code:", "Incorrect")
}

// TestGolden keeps every screen's look in testdata/TestGolden/*.golden
// (go test ./ui -run TestGolden -update rewrites them). The views go
// through the Ascii colour profile, what NO_COLOR=1 selects: colours are
// dropped, bold and reverse video kept, so the files are stable and show
// what a terminal without colour shows.
func TestGolden(t *testing.T) {
	e := newEnv(t, otp.Config{})
	toCode := func(addr string) func(d *driver) {
		return func(d *driver) { d.typ(addr); d.send(enter) }
	}
	for _, tc := range []struct {
		name string
		opts Options
		size [2]int
		do   func(d *driver)
	}{
		{"email", Options{}, [2]int{80, 24}, func(*driver) {}},
		{"email_dev", Options{DevOutbox: "/tmp/otplogin-outbox"}, [2]int{80, 24}, func(*driver) {}},
		{"email_typed", Options{}, [2]int{80, 24}, func(d *driver) { d.typ("alice@exam") }},
		{"email_invalid", Options{}, [2]int{80, 24}, func(d *driver) { d.typ("alice@localhost"); d.send(enter) }},
		{"email_too_long", Options{}, [2]int{80, 24}, func(d *driver) { d.typ(strings.Repeat("a", 250) + "@example.com") }},
		{"email_paste_refused", Options{}, [2]int{80, 24}, func(d *driver) { d.send(tea.PasteMsg{Content: "bob\x1b[31m@example.com"}) }},
		{"email_mail_down", Options{LogFile: "/home/me/.cache/otplogin/otplogin.log"}, [2]int{80, 24}, func(d *driver) {
			e.sender.setFail(smtpFailure{})
			defer e.sender.setFail(nil)
			d.typ("down@example.com")
			d.send(enter)
		}},
		{"email_notice", Options{Remote: true}, [2]int{80, 24}, func(d *driver) { d.send(shutdownNotice{}) }},
		{"sending", Options{}, [2]int{80, 24}, func(d *driver) { d.typ("s@example.com"); _ = d.update(enter) }},
		{"code", Options{}, [2]int{80, 24}, toCode("c@example.com")},
		{"code_remote", Options{Remote: true}, [2]int{80, 24}, toCode("r@example.com")},
		{"code_already_sent", Options{}, [2]int{80, 24}, func(d *driver) {
			toCode("again@example.com")(d)
			d.send(esc)
			d.send(enter)
		}},
		{"code_short", Options{}, [2]int{80, 24}, func(d *driver) { toCode("short@example.com")(d); d.typ("123"); d.send(enter) }},
		{"code_wrong", Options{}, [2]int{80, 24}, func(d *driver) {
			toCode("w@example.com")(d)
			d.typ(wrong(e.sender.code(t, "w@example.com")))
			d.send(enter)
		}},
		{"code_expired", Options{}, [2]int{80, 24}, func(d *driver) {
			toCode("x@example.com")(d)
			e.clock.Advance(5 * time.Minute)
			defer e.clock.Advance(-5 * time.Minute)
			d.fire()
		}},
		{"code_small", Options{}, [2]int{40, 10}, func(d *driver) {
			toCode("small@example.com")(d)
			d.typ(wrong(e.sender.code(t, "small@example.com")))
			d.send(enter)
		}},
		{"code_tiny", Options{}, [2]int{10, 3}, toCode("tiny@example.com")},
		{"done_remote", Options{Remote: true}, [2]int{80, 24}, func(d *driver) {
			toCode("v@example.com")(d)
			d.typ(e.sender.code(t, "v@example.com"))
			d.send(enter)
		}},
		{"done_local", Options{}, [2]int{80, 24}, func(d *driver) {
			toCode("l@example.com")(d)
			d.typ(e.sender.code(t, "l@example.com"))
			d.send(enter)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, e.options(tc.opts))
			d.send(tea.WindowSizeMsg{Width: tc.size[0], Height: tc.size[1]})
			tc.do(d)
			var out bytes.Buffer
			w := &colorprofile.Writer{Forward: &out, Profile: colorprofile.Ascii}
			if _, err := io.WriteString(w, d.m.View().Content); err != nil {
				t.Fatal(err)
			}
			teatest.RequireEqualOutput(t, out.Bytes())
		})
	}
}

// wrong returns a code that is not code.
func wrong(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

func TestThemeFollowsBackground(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	dark := d.m.View().Content
	d.send(tea.BackgroundColorMsg{Color: ansiWhite{}})
	light := d.m.View().Content
	if dark == light {
		t.Fatal("a light background did not change the colours")
	}
	if ansi.Strip(dark) != ansi.Strip(light) {
		t.Fatal("the theme changed the text")
	}
}

type ansiWhite struct{}

func (ansiWhite) RGBA() (r, g, b, a uint32) { return 0xffff, 0xffff, 0xffff, 0xffff }

func TestStaleMessages(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	before := d.view()
	for _, msg := range []tea.Msg{
		codeSentMsg{id: 99, ticket: otp.Ticket{Address: "x@example.com"}},
		codeSentMsg{id: d.m.reqID, err: errors.New("late")}, // right id, wrong screen
		verifyResultMsg{id: d.m.reqID},
		tickMsg{seq: 0},
		closeMsg{id: d.m.reqID},
		spinMsg{id: d.m.reqID},
	} {
		if cmd := d.update(msg); cmd != nil {
			t.Errorf("%T started a command", msg)
		}
	}
	if d.view() != before || d.m.on != ScreenEmail {
		t.Fatalf("stale messages changed the model:\n%s", d.view())
	}
}

type shutdownNotice struct{}

func (shutdownNotice) Notice() string { return "The server is restarting; finish within 10s." }

func TestNoticeShowsAsBanner(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{Remote: true}))
	if cmd := d.update(shutdownNotice{}); cmd != nil {
		t.Error("a notice started a command")
	}
	if v := d.view(); !strings.Contains(v, "The server is restarting; finish within 10s.") {
		t.Fatalf("notice not shown:\n%s", v)
	}
	if d.m.on != ScreenEmail {
		t.Errorf("a notice changed the screen to %q", d.m.on)
	}
}

// TestViewCacheCurrent walks every screen through resizes and both themes
// and checks each frame against one rendered from scratch: the cache must
// never show what an earlier size, theme, screen or key set drew.
func TestViewCacheCurrent(t *testing.T) {
	t.Run("own", func(t *testing.T) { walkScreens(t, nil) })
	t.Run("shared", func(t *testing.T) {
		// Another session fills the shared cache first (its email and
		// sending screens); TestCacheKeepsAddressesApart walks two
		// sessions through the same screens side by side.
		shared := NewCache()
		e := newEnv(t, otp.Config{})
		o := newDriver(t, e.options(Options{DevOutbox: "/tmp/otplogin-outbox", Cache: shared}))
		o.draw = true // fills the cache's inputs too
		_ = o.m.View()
		o.typ("bob@example.com")
		o.send(enter)
		walkScreens(t, shared)
	})
}

func walkScreens(t *testing.T, shared *Cache) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{DevOutbox: "/tmp/otplogin-outbox", Cache: shared}))
	var request tea.Cmd
	check := func(step string) {
		t.Helper()
		fresh := *d.m // a copy: the cache under test stays as it was
		fresh.cache, fresh.shared = nil, nil
		fresh.refresh()
		view := d.m.View().Content
		if strings.Contains(view, "bob@") {
			t.Fatalf("%s: another session's address shows", step)
		}
		if (step == "sending" || step == "code" || step == "verified") && !strings.Contains(view, "alice@example.com") {
			t.Fatalf("%s: the screen does not name the address:\n%s", step, view)
		}
		if got, want := d.m.View().Content, fresh.View().Content; got != want {
			t.Fatalf("%s: cached frame differs from a fresh one:\ngot  %q\nwant %q", step, got, want)
		}
	}
	steps := []struct {
		name string
		do   func()
	}{
		{"email", func() {}},
		{"typed", func() { d.typ("alice@exam") }},
		{"narrow", func() { d.send(tea.WindowSizeMsg{Width: 30, Height: 8}) }},
		{"light", func() { d.send(tea.BackgroundColorMsg{Color: ansiWhite{}}) }},
		{"wide", func() { d.send(tea.WindowSizeMsg{Width: 120, Height: 30}) }},
		{"invalid", func() { d.send(enter) }},
		{"sending", func() { d.typ("ple.com"); request = d.update(enter) }},
		{"code", func() { d.run(request) }},
		{"digits", func() { d.typ("12") }},
		{"a second", func() { e.clock.Advance(time.Second); d.fire() }},
		{"resend allowed", func() { e.clock.Advance(60 * time.Second); d.fire() }},
		{"resend", func() { d.send(ctrlR) }},
		{"dark", func() { d.send(tea.BackgroundColorMsg{Color: ansiBlack{}}) }},
		{"expired", func() { e.clock.Advance(10 * time.Minute); d.fire() }},
		{"tiny", func() { d.send(tea.WindowSizeMsg{Width: 10, Height: 3}) }},
		{"back", func() { d.send(esc) }},
		{"verified", func() {
			d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
			d.send(enter)
			d.typ(e.sender.code(t, alice))
			d.send(enter)
		}},
	}
	for _, s := range steps {
		s.do()
		check(s.name)
	}
	if d.m.on != ScreenVerified {
		t.Fatalf("the walk ended on screen %q, not on the success screen", d.m.on)
	}
}

type ansiBlack struct{}

func (ansiBlack) RGBA() (r, g, b, a uint32) { return 0, 0, 0, 0xffff }

// TestViewAllocs keeps View an assembly of parts rendered in Update: it is
// called once per frame (after every message with stock Bubble Tea), and
// re-rendering the help line, titles and wrapping each time made it several
// times as dear (docs/PERFORMANCE.md).
func TestViewAllocs(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{Remote: true}))
	d.typ("alice@exam")
	if n := testing.AllocsPerRun(20, func() { _ = d.m.View() }); n > 60 {
		t.Errorf("email screen: %.0f allocations per View, want at most 60", n)
	}
	d.typ("ple.com")
	d.send(enter)
	d.typ("123")
	if n := testing.AllocsPerRun(20, func() { _ = d.m.View() }); n > 60 {
		t.Errorf("code screen: %.0f allocations per View, want at most 60", n)
	}
}
