package ui

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/otplogin/otplogin/internal/fakeclock"
	"github.com/otplogin/otplogin/otp"
)

// t0 is 14:00 UTC; times on screen are shown in the clock's location.
var t0 = time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC)

// recordingSender is the mail boundary: it keeps the codes it was asked to
// send, so tests read a code the way a person does, from the mail and never
// from the UI. fail, when set, is returned instead.
type recordingSender struct {
	mu    sync.Mutex
	sent  []string // "address code"
	fail  error
	block bool // wait for the context to end, like a stalled server
}

func (s *recordingSender) SendCode(ctx context.Context, to, code string, _ time.Time) error {
	s.mu.Lock()
	fail, block := s.fail, s.block
	s.mu.Unlock()
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if fail != nil {
		return fail
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, to+" "+code)
	return nil
}

func (s *recordingSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

// code returns the last code mailed to to.
func (s *recordingSender) code(t testing.TB, to string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.sent) - 1; i >= 0; i-- {
		if a, c, _ := strings.Cut(s.sent[i], " "); a == to {
			return c
		}
	}
	t.Fatalf("no code was mailed to %s", to)
	return ""
}

func (s *recordingSender) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// smtpFailure is what a real SMTP sender returns: a reply that echoes the
// address, plus the methods otp reads. Its text must never reach the screen.
type smtpFailure struct{ maybe, rejected bool }

func (e smtpFailure) Error() string {
	return "550 5.1.1 <alice@example.com>: Recipient address rejected: mailbox unavailable"
}
func (e smtpFailure) MaybeDelivered() bool  { return e.maybe }
func (e smtpFailure) AddressRejected() bool { return e.rejected }

// flakyStore is the real memory store with a switch for the one fault it
// cannot produce: being unreachable, as Redis can be.
type flakyStore struct {
	otp.Store
	mu   sync.Mutex
	down bool
}

var errStoreDown = errors.New("dial tcp 10.0.0.7:6379: connection refused")

func (s *flakyStore) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.Join(otp.ErrUnavailable, errStoreDown)
	}
	return nil
}

func (s *flakyStore) Issue(ctx context.Context, addr, client string, p otp.Pending, now time.Time, lim otp.Limits) (otp.IssueResult, error) {
	if err := s.err(); err != nil {
		return otp.IssueResult{}, err
	}
	return s.Store.Issue(ctx, addr, client, p, now, lim)
}

func (s *flakyStore) Attempt(ctx context.Context, addr, client string, now time.Time, lim otp.Limits) (otp.Pending, error) {
	if err := s.err(); err != nil {
		return otp.Pending{}, err
	}
	return s.Store.Attempt(ctx, addr, client, now, lim)
}

// env is a real otp.Service over the memory store, a fake clock and a
// recording sender.
type env struct {
	clock  *fakeclock.Clock
	sender *recordingSender
	store  *flakyStore
	svc    *otp.Service
	log    *bytes.Buffer
}

func newEnv(t testing.TB, cfg otp.Config) *env {
	t.Helper()
	e := &env{
		clock:  fakeclock.New(t0),
		sender: &recordingSender{},
		store:  &flakyStore{Store: otp.NewMemoryStore()},
		log:    &bytes.Buffer{},
	}
	cfg.Now = e.clock.Now
	svc, err := otp.New(cfg, e.store, e.sender)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	e.svc = svc
	return e
}

func (e *env) options(o Options) Options {
	o.Service = e.svc
	o.Now = e.clock.Now
	if o.Client == "" {
		o.Client = "local"
	}
	o.Logger = log.New(e.log)
	return o
}

// firedMsg stands for a timer: tests fire it when they choose.
type firedMsg struct {
	d   time.Duration
	msg tea.Msg
}

// driver runs a Model the way a Program does, minus the waiting: commands
// run in line, timers are held until fired, spinner frames are dropped.
type driver struct {
	t      testing.TB
	m      *Model
	quit   bool
	done   []DoneMsg // what an Embedded model reported
	timers []firedMsg
	draw   bool // call View after every Update, as a Program does
}

func newDriver(t testing.TB, opts Options) *driver {
	m := New(opts)
	m.after = func(_ context.Context, d time.Duration, msg tea.Msg) tea.Cmd {
		return func() tea.Msg { return firedMsg{d, msg} }
	}
	d := &driver{t: t, m: m}
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	return d
}

// update runs one Update and returns its command without running it.
func (d *driver) update(msg tea.Msg) tea.Cmd {
	d.t.Helper()
	nm, cmd := d.m.Update(msg)
	d.m = nm.(*Model)
	if d.draw {
		_ = d.m.View()
	}
	return cmd
}

func (d *driver) send(msg tea.Msg) {
	d.t.Helper()
	d.run(d.update(msg))
}

func (d *driver) run(cmd tea.Cmd) {
	d.t.Helper()
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			d.run(c)
		}
	case tea.QuitMsg:
		d.quit = true
	case DoneMsg:
		d.done = append(d.done, msg)
	case firedMsg:
		if _, ok := msg.msg.(spinMsg); ok {
			break // frames of the spinner: nothing the flow depends on
		}
		d.timers = append(d.timers, msg)
	default:
		d.send(msg)
	}
}

// fire delivers the timers pending now; the ones they start stay pending.
func (d *driver) fire() {
	d.t.Helper()
	due := d.timers
	d.timers = nil
	for _, f := range due {
		d.send(f.msg)
	}
}

func (d *driver) typ(s string) {
	d.t.Helper()
	for _, r := range s {
		d.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// view is the screen as text, styling removed.
func (d *driver) view() string { return ansi.Strip(d.m.View().Content) }

func (d *driver) wantView(subs ...string) {
	d.t.Helper()
	v := d.view()
	for _, s := range subs {
		if !strings.Contains(v, s) {
			d.t.Errorf("view lacks %q:\n%s", s, v)
		}
	}
}

func (d *driver) wantNotView(subs ...string) {
	d.t.Helper()
	v := d.view()
	for _, s := range subs {
		if strings.Contains(v, s) {
			d.t.Errorf("view has %q:\n%s", s, v)
		}
	}
}

func (d *driver) wantScreen(s Screen) {
	d.t.Helper()
	if d.m.on != s {
		d.t.Fatalf("screen = %q, want %q; view:\n%s", d.m.on, s, d.view())
	}
}

var (
	enter = tea.KeyPressMsg{Code: tea.KeyEnter}
	esc   = tea.KeyPressMsg{Code: tea.KeyEscape}
	ctrlC = tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	ctrlR = tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl}
)

const alice = "alice@example.com"

// toCode types alice's address and sends it.
func (d *driver) toCode() {
	d.t.Helper()
	d.typ(alice)
	d.send(enter)
	d.wantScreen(ScreenCode)
}
