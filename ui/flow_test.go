package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/otp"
)

func TestVerifyLocal(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.wantView("Prove you own an email address", "enter send code", "esc quit", "ctrl+c quit")
	d.wantNotView("ctrl+r")

	d.typ("  Alice@EXAMPLE.com")
	d.send(enter)
	d.wantScreen(ScreenCode)
	if n := e.sender.count(); n != 1 {
		t.Fatalf("mails sent = %d, want 1", n)
	}
	d.wantView("We sent a code to Alice@example.com.", "Expires in 5:00", "resend in 60s",
		"enter verify", "esc change address")
	d.wantNotView("ctrl+r resend")

	code := e.sender.code(t, "Alice@example.com")
	d.typ(code)
	d.send(enter)
	if strings.Contains(e.log.String(), code) {
		t.Errorf("log shows the code:\n%s", e.log)
	}
	if !d.quit {
		t.Fatal("local model did not quit after success")
	}
	addr, ok := d.m.Verified()
	if !ok || addr != "Alice@example.com" || d.m.Outcome() != "verified" {
		t.Fatalf("Verified() = %q, %v; Outcome() = %q", addr, ok, d.m.Outcome())
	}
	v := d.m.View()
	if v.AltScreen {
		t.Error("final frame stays on the alternate screen; the success line would vanish")
	}
	if got := d.view(); got != "✓ Verified Alice@example.com\n" {
		t.Errorf("final frame = %q", got)
	}
	if strings.Contains(e.log.String(), "alice@") || strings.Contains(e.log.String(), "Alice@") {
		t.Errorf("log shows an unmasked address:\n%s", e.log)
	}
	if !strings.Contains(e.log.String(), "A***@example.com") {
		t.Errorf("log lacks the masked address:\n%s", e.log)
	}
}

func TestVerifyRemote(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{Remote: true, Client: "203.0.113.9", DevOutbox: "/tmp/outbox"}))
	d.wantNotView("DEV MODE", "/tmp/outbox")
	d.toCode()
	// The visitor sees the address they typed in full, to spot a typo;
	// the operator's log masks it.
	d.wantView("We sent a code to alice@example.com.")
	d.typ(e.sender.code(t, alice))
	d.send(enter)
	if d.quit {
		t.Fatal("remote model quit at once; the success screen must stay up")
	}
	d.wantScreen(ScreenVerified)
	d.wantView("✓ Verified alice@example.com", "enter close")
	if log := e.log.String(); strings.Contains(log, "alice@") || !strings.Contains(log, "a***@example.com") {
		t.Errorf("log does not mask the address:\n%s", log)
	}
	if d.m.View().AltScreen {
		t.Error("a remote session draws on the alternate screen; it should draw inline")
	}
	if n := len(d.timers); n == 0 || d.timers[n-1].d != successLinger {
		t.Fatalf("timers = %v, want a close timer", d.timers)
	}

	t.Run("key closes", func(t *testing.T) {
		d := *d
		d.t = t
		d.send(enter)
		if !d.quit || d.m.Outcome() != "verified" {
			t.Fatalf("quit = %v, outcome = %q", d.quit, d.m.Outcome())
		}
	})
	t.Run("timer closes", func(t *testing.T) {
		d := *d
		d.t = t
		d.fire()
		if !d.quit || d.m.Outcome() != "verified" {
			t.Fatalf("quit = %v, outcome = %q", d.quit, d.m.Outcome())
		}
	})
	t.Run("ctrl+c keeps verified", func(t *testing.T) {
		d := *d
		d.t = t
		d.send(ctrlC)
		if !d.quit || d.m.Outcome() != "verified" {
			t.Fatalf("quit = %v, outcome = %q", d.quit, d.m.Outcome())
		}
	})
}

func TestDevModeBanner(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{DevOutbox: "/home/me/.otplogin/outbox"}))
	d.wantView("DEV MODE", "/home/me/.otplogin/outbox")
	d.toCode()
	d.wantView("DEV MODE", "/home/me/.otplogin/outbox")
}

func TestWrongCodes(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.toCode()
	good := e.sender.code(t, alice)
	bad := "000000"
	if good == bad {
		bad = "111111"
	}

	d.typ("123")
	d.send(enter)
	d.wantView("Code must be 6 digits.")

	for left := 4; left >= 1; left-- {
		d.m.code.input.Reset()
		d.typ(bad)
		d.send(enter)
		d.wantView("Incorrect code. " + plural(left, "attempt") + " left.")
		if d.m.code.input.Value() != "" {
			t.Fatalf("input kept the wrong code %q", d.m.code.input.Value())
		}
		if d.m.Outcome() != "wrong-code" {
			t.Fatalf("outcome = %q", d.m.Outcome())
		}
	}
	d.typ(bad)
	d.send(enter)
	d.wantView("Too many wrong codes", "No usable code")
	if d.m.Outcome() != "too-many-attempts" {
		t.Fatalf("outcome = %q", d.m.Outcome())
	}
	d.wantNotView("enter verify")

	// The dead code takes no more input, not even the right code.
	d.typ(good)
	d.send(enter)
	if d.m.code.input.Value() != "" || (d.m.on == ScreenVerified) {
		t.Fatal("a dead code accepted input")
	}

	// After the cooldown a new code is one key away, and it works.
	d.wantView("resend in 60s")
	e.clock.Advance(60 * time.Second)
	d.fire()
	d.wantView("ctrl+r resend")
	d.send(ctrlR)
	d.wantScreen(ScreenCode)
	d.wantView("A new code is on its way", "Expires in 5:00")
	if e.sender.count() != 2 {
		t.Fatalf("mails sent = %d, want 2", e.sender.count())
	}
	d.typ(e.sender.code(t, alice))
	d.send(enter)
	if _, ok := d.m.Verified(); !ok {
		t.Fatalf("new code not accepted:\n%s", d.view())
	}
}

func TestExpiry(t *testing.T) {
	t.Run("countdown runs out", func(t *testing.T) {
		e := newEnv(t, otp.Config{})
		d := newDriver(t, e.options(Options{}))
		d.toCode()
		e.clock.Advance(2*time.Minute + 30*time.Second)
		d.fire()
		d.wantView("Expires in 2:30", "ctrl+r resend")
		e.clock.Advance(2*time.Minute + 30*time.Second)
		d.fire()
		d.wantView("This code has expired. Ask for a new code.", "No usable code")
		if d.m.Outcome() != "expired" {
			t.Fatalf("outcome = %q", d.m.Outcome())
		}
		if len(d.timers) != 0 {
			t.Fatalf("still ticking with nothing to count: %v", d.timers)
		}
	})
	t.Run("service says expired", func(t *testing.T) {
		e := newEnv(t, otp.Config{})
		d := newDriver(t, e.options(Options{}))
		d.toCode()
		d.typ(e.sender.code(t, alice))
		e.clock.Advance(5*time.Minute + time.Second) // no tick has run yet
		d.send(enter)
		d.wantView("This code has expired.")
		if _, ok := d.m.Verified(); ok || d.m.Outcome() != "expired" {
			t.Fatalf("outcome = %q", d.m.Outcome())
		}
		d.send(ctrlR)
		d.wantView("A new code is on its way")
	})
}

func TestResendCooldown(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.toCode()
	d.send(ctrlR)
	if e.sender.count() != 1 {
		t.Fatal("ctrl+r sent a code during the cooldown")
	}
	d.wantView("resend in 60s")
	e.clock.Advance(18 * time.Second)
	d.fire()
	d.wantView("resend in 42s")
	d.wantNotView("ctrl+r resend")
	e.clock.Advance(42 * time.Second)
	d.fire()
	d.wantView("· ctrl+r resend", "ctrl+r resend •")
	d.send(ctrlR)
	if e.sender.count() != 2 {
		t.Fatalf("mails sent = %d, want 2", e.sender.count())
	}
	d.wantView("A new code is on its way", "resend in 60s")
}

func TestAlreadySent(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.toCode()
	e.clock.Advance(18 * time.Second)
	d.send(esc)
	d.wantScreen(ScreenEmail)
	if d.m.email.input.Value() != alice {
		t.Fatalf("back lost the address: %q", d.m.email.input.Value())
	}
	d.send(enter)
	d.wantScreen(ScreenCode)
	if e.sender.count() != 1 {
		t.Fatal("a second code was mailed inside the cooldown")
	}
	d.wantView("A code was already sent at 14:00; enter it, or resend in 42s.")
	d.typ(e.sender.code(t, alice))
	d.send(enter)
	if _, ok := d.m.Verified(); !ok {
		t.Fatal("the code sent first was not accepted")
	}
}

func TestBackAndQuit(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.toCode()
	d.send(esc)
	d.wantScreen(ScreenEmail)
	d.wantView("esc quit")
	d.send(esc)
	if !d.quit || d.m.Outcome() != "cancelled" {
		t.Fatalf("esc on the email screen: quit = %v, outcome = %q", d.quit, d.m.Outcome())
	}
}

func TestCtrlCEverywhere(t *testing.T) {
	e := newEnv(t, otp.Config{})
	for _, tc := range []struct {
		name  string
		setup func(d *driver)
	}{
		{"email", func(*driver) {}},
		{"sending", func(d *driver) { d.typ(alice); _ = d.update(enter) }},
		{"code", func(d *driver) { d.typ("bob@example.com"); d.send(enter) }},
		{"verifying", func(d *driver) {
			d.typ("carol@example.com")
			d.send(enter)
			d.typ("123456")
			_ = d.update(enter)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, e.options(Options{}))
			tc.setup(d)
			cancel := d.m.cancel
			d.send(ctrlC)
			// Ctrl+C is not Esc: the local command exits 130 on it, as
			// shells expect of an interrupt.
			if !d.quit || d.m.Outcome() != "interrupted" {
				t.Fatalf("quit = %v, outcome = %q", d.quit, d.m.Outcome())
			}
			if cancel != nil && d.m.cancel != nil {
				t.Error("request in flight not cancelled")
			}
		})
	}
}

func TestStaleAnswers(t *testing.T) {
	e := newEnv(t, otp.Config{})

	t.Run("code sent after esc", func(t *testing.T) {
		d := newDriver(t, e.options(Options{}))
		d.typ(alice)
		req := d.update(enter)
		d.wantScreen(ScreenSending)
		d.wantView("Sending a code to alice@example.com", "esc cancel")
		d.send(esc)
		d.wantScreen(ScreenEmail)
		d.run(req) // the answer arrives late
		d.wantScreen(ScreenEmail)
	})
	t.Run("verify result after esc", func(t *testing.T) {
		d := newDriver(t, e.options(Options{}))
		d.typ("bob@example.com")
		d.send(enter)
		d.typ(e.sender.code(t, "bob@example.com"))
		check := d.update(enter)
		d.send(esc)
		d.run(check)
		d.wantScreen(ScreenEmail)
		if _, ok := d.m.Verified(); ok {
			t.Fatal("a verify answer for an abandoned screen was taken")
		}
	})
	t.Run("old request id", func(t *testing.T) {
		d := newDriver(t, e.options(Options{}))
		d.typ("dave@example.com")
		req := d.update(enter)
		d.send(esc)
		d.send(enter) // a second request for the same address
		d.wantScreen(ScreenCode)
		d.run(req) // the first one's answer: ignored
		d.wantScreen(ScreenCode)
		if d.m.code.state == codeEarlier {
			t.Fatal("stale answer changed the screen")
		}
	})
}

func TestRequestFailures(t *testing.T) {
	for _, tc := range []struct {
		name        string
		fault       func(e *env)
		wantScreen  Screen
		wantText    string
		wantOutcome string
	}{
		{"address rejected", func(e *env) { e.sender.setFail(smtpFailure{rejected: true}) },
			ScreenEmail, "We could not send to that address. Check it and try again.", "delivery-failed"},
		{"mail down", func(e *env) { e.sender.setFail(smtpFailure{}) },
			ScreenEmail, "Mail is not working right now. Try again later.", "delivery-failed"},
		{"maybe sent", func(e *env) { e.sender.setFail(smtpFailure{maybe: true}) },
			ScreenCode, "The mail server did not confirm delivery; if no code arrives, resend.", "sent"},
		{"store down", func(e *env) { e.store.mu.Lock(); e.store.down = true; e.store.mu.Unlock() },
			ScreenEmail, "Service temporarily unavailable, try again.", "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, otp.Config{})
			tc.fault(e)
			d := newDriver(t, e.options(Options{}))
			d.typ(alice)
			d.send(enter)
			d.wantScreen(tc.wantScreen)
			d.wantView(tc.wantText)
			d.wantNotView("550", "Recipient", "refused", "6379")
			if d.m.Outcome() != tc.wantOutcome {
				t.Errorf("outcome = %q, want %q", d.m.Outcome(), tc.wantOutcome)
			}
			if strings.Contains(e.log.String(), alice) {
				t.Errorf("log shows the address:\n%s", e.log)
			}
		})
	}
}

func TestVerifyStoreDown(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.toCode()
	e.store.mu.Lock()
	e.store.down = true
	e.store.mu.Unlock()
	d.typ(e.sender.code(t, alice))
	d.send(enter)
	d.wantScreen(ScreenCode)
	d.wantView("Service temporarily unavailable, try again.", "enter verify")
	d.wantNotView("refused")
	if !strings.Contains(e.log.String(), "connection refused") {
		t.Errorf("operator log lacks the cause:\n%s", e.log)
	}
}

func TestRequestDeadline(t *testing.T) {
	e := newEnv(t, otp.Config{})
	e.sender.block = true // a server that never answers
	d := newDriver(t, e.options(Options{RequestTimeout: 20 * time.Millisecond}))
	d.typ(alice)
	d.send(enter) // returns only because of the deadline
	d.wantScreen(ScreenEmail)
	d.wantView("Mail is not working right now.")
}

func TestLimits(t *testing.T) {
	e := newEnv(t, otp.Config{Limits: otp.Limits{AddressIssues: 1}})
	d := newDriver(t, e.options(Options{}))
	d.toCode()
	e.clock.Advance(61 * time.Second)
	d.fire()
	d.send(ctrlR)
	d.wantScreen(ScreenCode)
	d.wantView("Too many codes for this address. Try again at 15:00 (in 59 min).")
	if d.m.Outcome() != "limited" {
		t.Fatalf("outcome = %q", d.m.Outcome())
	}
	// The code already mailed still works.
	d.typ(e.sender.code(t, alice))
	d.send(enter)
	if _, ok := d.m.Verified(); !ok {
		t.Fatalf("not verified:\n%s", d.view())
	}
}

func TestNoCodePending(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.toCode()
	code := e.sender.code(t, alice)
	// The code is used elsewhere (another session of the same person).
	if err := e.svc.Verify(context.Background(), alice, "local", code); err != nil {
		t.Fatal(err)
	}
	d.typ(code)
	d.send(enter)
	d.wantScreen(ScreenEmail)
	d.wantView("No code is waiting for this address. Send a new one.")
}

// TestTicksOnlyOnCodeScreen checks that an idle model costs nothing: no
// timer runs on the email screen, one tick chain on the code screen, and
// none once the screen is left.
func TestTicksOnlyOnCodeScreen(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	if cmd := d.m.Init(); cmd == nil {
		t.Fatal("Init asks nothing")
	} else if _, ok := cmd().(tea.BackgroundColorMsg); ok {
		t.Fatal("Init should ask for the background colour, not answer it")
	}
	for _, r := range "alice@example.co" {
		if cmd := d.update(tea.KeyPressMsg{Code: r, Text: string(r)}); cmd != nil {
			t.Fatalf("typing %q started a command (cursor blink?)", r)
		}
	}
	d.typ("m")
	d.send(enter)
	if len(d.timers) != 1 {
		t.Fatalf("code screen timers = %d, want 1", len(d.timers))
	}
	for range 3 {
		e.clock.Advance(time.Second)
		d.fire()
		if len(d.timers) != 1 {
			t.Fatalf("tick chains = %d, want 1", len(d.timers))
		}
	}
	// Resend twice: the old chain must die, not double.
	for range 2 {
		e.clock.Advance(time.Minute)
		d.fire()
		d.send(ctrlR)
		d.fire()
		if len(d.timers) != 1 {
			t.Fatalf("tick chains after resend = %d, want 1", len(d.timers))
		}
	}
	d.send(esc)
	d.fire()
	if len(d.timers) != 0 {
		t.Fatalf("email screen still ticks: %v", d.timers)
	}
	// A tick that was in flight when the screen changed does nothing.
	if cmd := d.update(tickMsg{seq: d.m.code.tickSeq}); cmd != nil {
		t.Fatal("a tick on the email screen started another")
	}
	if cmd := d.update(tickMsg{seq: d.m.code.tickSeq - 1}); cmd != nil {
		t.Fatal("an old tick chain was revived")
	}
}

// TestNoServiceNoLogger runs a model made with zero Options: a request
// fails with the generic message instead of panicking, and logging it
// needs no Logger.
func TestNoServiceNoLogger(t *testing.T) {
	d := newDriver(t, Options{})
	d.typ(alice)
	d.send(enter)
	d.wantScreen(ScreenEmail)
	d.wantView("Service temporarily unavailable")
}
