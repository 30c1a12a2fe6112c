package ui

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/otplogin/otplogin/internal/leakcheck"
	"github.com/otplogin/otplogin/otp"
)

// runCmd runs cmd as a Program does, in a goroutine of its own, and
// returns what it delivered, failing if it is still waiting after bound (a
// generous limit against a hang, not a speed check).
func runCmd(t *testing.T, cmd tea.Cmd, bound time.Duration) tea.Msg {
	t.Helper()
	got := make(chan tea.Msg, 1)
	go func() { got <- cmd() }()
	select {
	case msg := <-got:
		return msg
	case <-time.After(bound):
		t.Fatalf("command still waiting after %v", bound)
		return nil
	}
}

// afterAnHour is after with every delay an hour.
func afterAnHour(ctx context.Context, _ time.Duration, msg tea.Msg) tea.Cmd {
	return after(ctx, time.Hour, msg)
}

// sessionTimers returns the model's real timer commands, made under ctx:
// the sending screen's spinner, the code screen's countdown and the remote
// success screen's linger. Each waits an hour instead of its own delay, so
// only its context can end it, however slowly the test runs.
func sessionTimers(t *testing.T, ctx context.Context) map[string]tea.Cmd {
	t.Helper()
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{Remote: true, Context: ctx}))
	d.typ(alice)
	request := d.update(enter)
	m := *d.m             // a copy, so that the driver keeps its held timers
	m.after = afterAnHour // as New sets after, before the driver took the timers over
	spin := m.sending.spin(&m)

	d.run(request)
	d.wantScreen(ScreenCode)
	m = *d.m
	m.after = afterAnHour
	countdown := m.code.nextTick(&m)

	d.typ(e.sender.code(t, alice))
	verify := d.update(enter)
	m = *d.m
	m.after = afterAnHour
	_, linger := m.Update(verify())
	return map[string]tea.Cmd{"spinner": spin, "countdown": countdown, "linger": linger}
}

// TestTimersEndWithSession checks that no timer outlives the session's
// context: a Program cannot cancel a command, so one still waiting keeps
// the whole ended session in memory until it fires.
func TestTimersEndWithSession(t *testing.T) {
	leakcheck.Check(t)
	for _, when := range []string{"before it runs", "while it waits"} {
		ctx, cancel := context.WithCancel(context.Background())
		for name, cmd := range sessionTimers(t, ctx) {
			if cmd == nil {
				t.Fatalf("%s: no timer", name)
			}
			if when == "before it runs" {
				cancel()
			} else {
				time.AfterFunc(time.Millisecond, cancel)
			}
			if msg := runCmd(t, cmd, 5*time.Second); msg != nil {
				t.Errorf("%s, cancelled %s: delivered %T", name, when, msg)
			}
		}
		cancel()
	}
}

func TestAfterDelivers(t *testing.T) {
	leakcheck.Check(t)
	msg := closeMsg{id: 7}
	if got := runCmd(t, after(context.Background(), time.Millisecond, msg), 5*time.Second); got != msg {
		t.Fatalf("delivered %v, want %v", got, msg)
	}
}

// probeMsg marks a point in a Program's message stream.
type probeMsg struct{}

// TestProgramEndedSessionLeavesNothing ends a remote session on its success
// screen, as an SSH client hanging up does, and checks that nothing of it
// keeps running: with tea.Tick the 10 s linger outlived the program. A plain
// Program without signal handling, not teatest, whose signal goroutines
// outlive every test.
func TestProgramEndedSessionLeavesNothing(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t, otp.Config{})
	seen := make(chan tea.Msg, 64)
	p := tea.NewProgram(New(e.options(Options{Remote: true, Context: ctx})),
		tea.WithInput(nil), tea.WithOutput(io.Discard), tea.WithoutSignalHandler(),
		tea.WithWindowSize(80, 24),
		tea.WithFilter(func(_ tea.Model, msg tea.Msg) tea.Msg {
			switch msg.(type) {
			case codeSentMsg, verifyResultMsg, probeMsg:
				seen <- msg
			}
			return msg
		}))
	done := make(chan tea.Model, 1)
	go func() {
		m, err := p.Run()
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	wait := func(want tea.Msg) {
		t.Helper()
		timeout := time.After(waitLimit)
		for {
			select {
			case msg := <-seen:
				if fmt.Sprintf("%T", msg) == fmt.Sprintf("%T", want) {
					return
				}
			case <-timeout:
				t.Fatalf("no %T within %v", want, waitLimit)
			}
		}
	}
	typ := func(s string) {
		for _, r := range s {
			p.Send(tea.KeyPressMsg{Code: r, Text: string(r)})
		}
		p.Send(enter)
	}
	typ(alice)
	wait(codeSentMsg{})
	typ(e.sender.code(t, alice))
	wait(verifyResultMsg{})
	p.Send(probeMsg{}) // filtered only after the verify result's Update started the linger
	wait(probeMsg{})

	cancel() // the SSH session ends
	p.Quit()
	select {
	case m := <-done:
		if got := m.(*Model).Outcome(); got != outcomeVerified {
			t.Fatalf("Outcome() = %q, want %q", got, outcomeVerified)
		}
	case <-time.After(waitLimit):
		t.Fatal("program still running")
	}
}

// TestSpinnerTicksOnlyWhileSending checks the spinner's own chain: each
// tick draws the next frame and asks for one more, until the request's
// answer or a newer request ends it.
func TestSpinnerTicksOnlyWhileSending(t *testing.T) {
	e := newEnv(t, otp.Config{})
	d := newDriver(t, e.options(Options{}))
	d.typ(alice)
	request := d.update(enter)
	first := d.view()
	if cmd := d.update(spinMsg{id: d.m.reqID}); cmd == nil {
		t.Fatal("the spinner stopped while sending")
	}
	if d.view() == first {
		t.Fatal("a spinner tick did not draw the next frame")
	}
	if cmd := d.update(spinMsg{id: d.m.reqID - 1}); cmd != nil {
		t.Error("a tick of an earlier request continued its chain")
	}
	d.run(request)
	d.wantScreen(ScreenCode)
	if cmd := d.update(spinMsg{id: d.m.reqID}); cmd != nil {
		t.Error("the spinner still ticks on the code screen")
	}
}
