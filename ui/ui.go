// Package ui is the terminal face of otplogin: a Bubble Tea model that takes
// an email address, has the otp service mail a one-time code to it, and
// checks the code the person types.
//
// Screens: email -> sending -> code -> done. The model never blocks: every
// Service call runs in a tea.Cmd under a deadline and comes back as a
// message tagged with a request id, so a late answer to a request the user
// walked away from changes nothing. Nothing ticks while the model is idle:
// the cursor does not blink, the spinner runs only while a request is out,
// and the countdown ticks once a second only while the code screen is shown.
//
// What the user sees never contains internals (SMTP replies, store errors)
// or the code itself; the operator's log gets the details with the address
// masked.
package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"

	"github.com/otplogin/otplogin/internal/mask"
	"github.com/otplogin/otplogin/otp"
)

// Service is what the UI needs from otp; *otp.Service satisfies it.
type Service interface {
	Request(ctx context.Context, address, client string) (otp.Ticket, error)
	Verify(ctx context.Context, address, client, code string) error
	CodeLength() int
}

// Options configure a Model. Only Service is required.
type Options struct {
	// Service issues and checks codes.
	Service Service
	// Client names the requester for per-client limits: "local", or the SSH
	// source address.
	Client string
	// Now is the clock (default time.Now); tests inject a fake one.
	Now func() time.Time
	// DevOutbox, when set and not Remote, is the folder where the dev mail
	// server saves messages; the UI shows a DEV MODE banner with it.
	DevOutbox string
	// Remote marks an SSH session: the address is masked on screen
	// (a***@example.com), the outbox is never shown, and the success screen
	// stays up until a key or a short timer instead of quitting at once.
	Remote bool
	// RequestTimeout bounds each Request and Verify (default 30s).
	RequestTimeout time.Duration
	// Context, if set, is the parent of every request's context and ends
	// every timer; cancel it when the session ends to abandon in-flight
	// requests and let nothing of the session wait on.
	Context context.Context
	// Cache, if set, shares rendered screen parts with the other Models
	// that use it; a server makes one for all its sessions. Models sharing
	// a Cache must have the same AppName.
	Cache *Cache
	// AppName, if set, names the application in every screen's title
	// ("Acme · Check your email"): the operator's product.
	AppName string
	// Logger is the operator's log (nil discards). It gets masked
	// addresses and error details, never a code.
	Logger *log.Logger
}

// DefaultRequestTimeout bounds a Service call when Options.RequestTimeout is
// zero. Mail delivery dominates it.
const DefaultRequestTimeout = 30 * time.Second

// successLinger is how long a Remote success screen stays up without a key.
const successLinger = 10 * time.Second

type state uint8

const (
	stateEmail   state = iota // typing the address
	stateSending              // Request in flight, spinner on
	stateCode                 // typing the code, countdown on
	stateDone                 // verified
)

// Outcome words; see Model.Outcome.
const (
	outcomeIdle        = "idle"
	outcomeSent        = "sent"
	outcomeWrongCode   = "wrong-code"
	outcomeExpired     = "expired"
	outcomeTooMany     = "too-many-attempts"
	outcomeNoCode      = "no-code"
	outcomeLimited     = "limited"
	outcomeDelivery    = "delivery-failed"
	outcomeUnavailable = "unavailable"
	outcomeVerified    = "verified"
	outcomeCancelled   = "cancelled"
	outcomeInterrupted = "interrupted"
)

type tone uint8

const (
	toneNone tone = iota
	toneInfo
	toneSuccess
	toneFailure
)

// banner replaces the tutorial's flash message.
type banner struct {
	tone tone
	text string
}

// Model is the Bubble Tea model for the whole flow. Create it with New.
//
// Its methods take a pointer and Update returns the same pointer: a Model is
// ~8.6 KB (a textinput.Model is most of it), and a value receiver copied it
// to the heap on every message, ~45 times a login, which was half of what
// an SSH server allocated per login and much of its GC work.
type Model struct {
	svc     Service
	client  string
	now     func() time.Time
	outbox  string
	appName string
	remote  bool
	timeout time.Duration
	ctx     context.Context
	logger  *log.Logger
	codeLen int
	after   func(context.Context, time.Duration, tea.Msg) tea.Cmd

	state         state
	width, height int
	st            *styles
	keys          keyMap
	input         textinput.Model // the email or the code field; see setInput
	inputFor      state
	typed         string // the address field's text while input holds the code
	spinFrame     int    // index into spinner.Dot.Frames while sending

	// clock is the time of the last Update; View shows it, so View stays a
	// pure function of the model.
	clock  time.Time
	cache  *frameCache // what View draws that changes rarely; see refresh
	shared *Cache      // Options.Cache

	address  string     // normalised address of the current request
	ticket   otp.Ticket // the pending code's times, once a Request worked
	reqID    uint64     // id of the one request whose answer counts
	cancel   context.CancelFunc
	returnTo state  // where a failed or cancelled Request goes back to
	tickSeq  uint64 // id of the one countdown tick chain that counts

	banner      banner
	notice      string // what input sanitising did, e.g. a truncated paste
	emailErr    error  // validation of the typed address
	emailTried  bool   // Enter was pressed once: show emailErr from now on
	alreadySent bool   // the code screen shows a code sent earlier
	codeDead    bool   // expired or out of attempts: only resend helps
	verifying   bool
	verified    bool
	outcome     string
}

// New returns the model for one session.
func New(opts Options) *Model {
	m := &Model{
		svc:     opts.Service,
		client:  opts.Client,
		now:     opts.Now,
		remote:  opts.Remote,
		timeout: opts.RequestTimeout,
		ctx:     opts.Context,
		logger:  opts.Logger,
		shared:  opts.Cache,
		codeLen: 6,
		st:      theme(true), // until the terminal says otherwise
		keys:    defaultKeyMap(),
		input:   textinput.New(),
		outcome: outcomeIdle,
		after:   after,
	}
	if !opts.Remote {
		m.outbox = safe(opts.DevOutbox)
	}
	m.appName = safe(opts.AppName)
	if m.now == nil {
		m.now = time.Now
	}
	if m.timeout <= 0 {
		m.timeout = DefaultRequestTimeout
	}
	if m.ctx == nil {
		m.ctx = context.Background()
	}
	if m.logger == nil {
		m.logger = log.New(io.Discard)
	}
	if m.svc != nil && m.svc.CodeLength() > 0 {
		m.codeLen = m.svc.CodeLength()
	}
	m.clock = m.now()

	// ctrl+v would read the clipboard of the machine running the program,
	// which over SSH is the server's; terminals paste with bracketed paste
	// (tea.PasteMsg) anyway.
	m.input.KeyMap.Paste.SetEnabled(false)
	m.setTheme(true)
	m.inputFor = stateCode // so that setInput loads the email field
	m.setInput(stateEmail)
	m.input.Focus()
	m.syncKeys()
	m.refresh()
	return m
}

// setInput loads the one text input with the email or the code field. One
// input serves both screens because a textinput.Model is ~8 KB, and an idle
// SSH session should hold as little as possible; the typed address is kept
// aside while the code field is in use.
func (m *Model) setInput(s state) {
	if m.inputFor == s {
		return
	}
	if m.inputFor == stateEmail {
		m.typed = m.input.Value()
	}
	m.inputFor = s
	m.input.Reset()
	if s == stateEmail {
		m.input.Prompt = "Email: "
		m.input.Placeholder = "you@example.com"
		m.input.CharLimit = 254 // the longest address SMTP allows (RFC 5321)
		m.input.SetValue(m.typed)
	} else {
		m.input.Prompt = "Code: "
		m.input.Placeholder = fmt.Sprintf("%d-digit code", m.codeLen)
		// Digits only, with room to spare so that a 7th digit gets "must
		// be 6 digits" instead of vanishing without a word.
		m.input.CharLimit = 2 * m.codeLen
	}
	m.fitInput()
}

// fitInput gives the input the inner width less its prompt and the cursor.
func (m *Model) fitInput() {
	m.input.SetWidth(max(m.innerWidth()-len(m.input.Prompt)-1, 1))
}

// Init asks the terminal for its background colour; the answer picks the
// theme (dark when there is none, e.g. a plain SSH client).
func (m *Model) Init() tea.Cmd {
	return tea.RequestBackgroundColor
}

// Verified returns the verified address once the code was accepted.
func (m *Model) Verified() (address string, ok bool) {
	if !m.verified {
		return "", false
	}
	return m.address, true
}

// Outcome is one word for the operator's log: "verified"; "cancelled" when
// the user quit with Esc, "interrupted" with Ctrl+C; otherwise the last thing that happened: "idle" (nothing
// requested), "sent", "wrong-code", "expired", "too-many-attempts",
// "no-code", "limited", "delivery-failed" or "unavailable".
func (m *Model) Outcome() string { return m.outcome }

// Messages. Each answer carries the id of the request it answers.
type (
	codeSentMsg struct {
		id     uint64
		ticket otp.Ticket
		err    error
	}
	verifyResultMsg struct {
		id  uint64
		err error
	}
	// tickMsg drives the code screen's countdown.
	tickMsg struct{ seq uint64 }
	// closeMsg ends a Remote success screen.
	closeMsg struct{ id uint64 }
	// spinMsg moves the sending screen's spinner on.
	spinMsg struct{ id uint64 }
)

var errNoService = errors.New("ui: no Service configured")

func requestCmd(ctx context.Context, cancel context.CancelFunc, svc Service, id uint64, addr, client string) tea.Cmd {
	return func() tea.Msg {
		defer cancel()
		if svc == nil {
			return codeSentMsg{id: id, err: errNoService}
		}
		t, err := svc.Request(ctx, addr, client)
		return codeSentMsg{id: id, ticket: t, err: err}
	}
}

func verifyCmd(ctx context.Context, cancel context.CancelFunc, svc Service, id uint64, addr, client, code string) tea.Cmd {
	return func() tea.Msg {
		defer cancel()
		if svc == nil {
			return verifyResultMsg{id: id, err: errNoService}
		}
		return verifyResultMsg{id: id, err: svc.Verify(ctx, addr, client, code)}
	}
}

// after delivers msg in d, or nothing once ctx (the session's) ends. A
// Program cannot cancel a command, and one parked on a timer keeps the
// whole finished program reachable until it fires: with tea.Tick, the 10 s
// success linger held hundreds of ended sessions in memory after a burst of
// logins. It is a Model field so tests can fire timers themselves instead
// of sleeping.
func after(ctx context.Context, d time.Duration, msg tea.Msg) tea.Cmd {
	return func() tea.Msg {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return msg
		case <-ctx.Done():
			return nil
		}
	}
}

// notice is a message from outside the UI with a line for the user, such as
// serve.ShutdownMsg; matched by method so that ui does not import serve.
type notice interface{ Notice() string }

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m.clock = m.now()
	cmd := m.update(msg)
	m.syncKeys()
	m.refresh()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.setSize(msg.Width, msg.Height)
		return nil
	case tea.BackgroundColorMsg:
		m.setTheme(msg.IsDark())
		return nil
	case tea.KeyPressMsg:
		if key.Matches(msg, m.keys.Quit) {
			return m.quit(outcomeInterrupted)
		}
	case notice:
		// e.g. the SSH server shutting down: say so, keep the screen.
		m.banner = banner{toneInfo, msg.Notice()}
		return nil
	case codeSentMsg:
		return m.onCodeSent(msg)
	case verifyResultMsg:
		return m.onVerifyResult(msg)
	case tickMsg:
		return m.onTick(msg)
	case spinMsg:
		// Dropping the tick of an earlier request, or outside the sending
		// screen, ends its chain.
		if m.state != stateSending || msg.id != m.reqID {
			return nil
		}
		m.spinFrame = (m.spinFrame + 1) % len(spinner.Dot.Frames)
		return m.spinTick()
	case closeMsg:
		if m.state == stateDone && msg.id == m.reqID {
			return tea.Quit
		}
		return nil
	}

	switch m.state {
	case stateEmail:
		return m.updateEmail(msg)
	case stateSending:
		return m.updateSending(msg)
	case stateCode:
		return m.updateCode(msg)
	case stateDone:
		return m.updateDone(msg)
	}
	return nil
}

func (m *Model) setSize(w, h int) {
	m.width, m.height = max(w, 0), max(h, 0)
	m.fitInput()
}

func (m *Model) setTheme(isDark bool) {
	m.st = theme(isDark)
	m.input.SetStyles(m.st.input)
}

// syncKeys enables the keys that work on the current screen, so the help bar
// lists exactly those.
func (m *Model) syncKeys() {
	k := &m.keys
	onCode := m.state == stateCode
	k.Submit.SetEnabled(m.state == stateEmail || onCode && !m.codeDead && !m.verifying)
	if onCode {
		k.Submit.SetHelp("enter", "verify")
	} else {
		k.Submit.SetHelp("enter", "send code")
	}
	k.Resend.SetEnabled(onCode && !m.verifying && m.canResend())
	switch m.state {
	case stateEmail:
		k.Back.SetHelp("esc", "quit")
	case stateSending:
		k.Back.SetHelp("esc", "cancel")
	default:
		k.Back.SetHelp("esc", "change address")
	}
	k.Back.SetEnabled(m.state != stateDone)
	k.Close.SetEnabled(m.state == stateDone)
}

func (m *Model) canResend() bool { return !m.clock.Before(m.ticket.ResendAt) }

// quit ends the program; outcome says how the user left, unless the
// address was already verified.
func (m *Model) quit(outcome string) tea.Cmd {
	m.dropRequest()
	if !m.verified {
		m.outcome = outcome
	}
	return tea.Quit
}

// dropRequest cancels the request in flight, if any, and makes sure its
// answer is ignored when it comes.
func (m *Model) dropRequest() {
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
	m.reqID++
	m.verifying = false
}

func (m *Model) newRequest() context.Context {
	m.dropRequest()
	ctx, cancel := context.WithTimeout(m.ctx, m.timeout)
	m.cancel = cancel
	return ctx
}

// startRequest asks the Service for a code for m.address.
func (m *Model) startRequest() tea.Cmd {
	ctx := m.newRequest()
	m.returnTo = m.state
	m.state = stateSending
	m.banner = banner{}
	m.spinFrame = 0
	return tea.Batch(m.spinTick(), requestCmd(ctx, m.cancel, m.svc, m.reqID, m.address, m.client))
}

// spinTick moves the spinner on while the current request is out. Not the
// spinner bubble's own tick: that is a tea.Tick, which outlives the session.
func (m *Model) spinTick() tea.Cmd {
	return m.after(m.ctx, spinner.Dot.FPS, spinMsg{id: m.reqID})
}

func (m *Model) updateSending(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, m.keys.Back) {
		m.dropRequest()
		return m.show(m.returnTo)
	}
	return nil
}

// show switches to the email or code screen.
func (m *Model) show(s state) tea.Cmd {
	m.state = s
	m.setInput(s)
	if s == stateEmail {
		m.input.Focus()
		return nil
	}
	if m.codeDead {
		m.input.Blur()
	} else {
		m.input.Focus()
	}
	m.tickSeq++ // any tick still in flight belongs to an old chain
	return m.nextTick()
}

func (m *Model) onCodeSent(msg codeSentMsg) tea.Cmd {
	if msg.id != m.reqID || m.state != stateSending {
		return nil // answer to a request the user walked away from
	}
	m.cancel = nil
	if msg.err != nil {
		return m.requestFailed(msg.err)
	}
	t := msg.ticket
	resent := m.returnTo == stateCode && !t.AlreadySent
	m.ticket = t
	if t.Address != "" {
		m.address = t.Address
	}
	m.alreadySent = t.AlreadySent
	m.codeDead = false
	if m.inputFor == stateCode {
		m.input.Reset() // a resend: the old code is void
	}
	m.outcome = outcomeSent
	m.logInfo("code requested", "already_sent", t.AlreadySent, "maybe_sent", t.MaybeSent)
	switch {
	case t.MaybeSent:
		m.banner = banner{toneInfo, "The mail server did not confirm delivery; if no code arrives, resend."}
	case resent:
		m.banner = banner{toneInfo, "A new code is on its way; the previous one no longer works."}
	}
	return m.show(stateCode)
}

// requestFailed turns a Request error into words and goes back to the
// screen the request came from (the email screen if the address is bad).
func (m *Model) requestFailed(err error) tea.Cmd {
	back := m.returnTo
	var (
		ae *otp.AddressError
		le *otp.LimitError
		de *otp.DeliveryError
	)
	switch {
	case errors.As(err, &ae):
		// The service's own check disagreed with ours; show its reason
		// where the typed address is.
		back = stateEmail
		m.emailErr, m.emailTried = err, true
	case errors.As(err, &le):
		m.outcome = outcomeLimited
		m.banner = banner{toneFailure, m.limitText(le)}
	case errors.As(err, &de) && de.AddressRejected:
		m.outcome = outcomeDelivery
		back = stateEmail
		m.banner = banner{toneFailure, "We could not send to that address. Check it and try again."}
	case errors.As(err, &de):
		m.outcome = outcomeDelivery
		m.banner = banner{toneFailure, "Mail is not working right now. Try again later."}
	default:
		m.outcome = outcomeUnavailable
		m.banner = banner{toneFailure, "Service temporarily unavailable, try again."}
	}
	m.logWarn("code request failed", err)
	return m.show(back)
}

// limitText says which limit refused and when to come back.
func (m *Model) limitText(le *otp.LimitError) string {
	var what string
	switch le.Kind {
	case otp.LimitResend:
		what = "Please wait before asking for another code."
	case otp.LimitAddress:
		what = "Too many codes for this address."
	case otp.LimitClient:
		what = "Too many codes from this connection."
	case otp.LimitFailures:
		what = "Too many wrong codes for this address."
	default: // otp.LimitBusy, otp.LimitGlobalRate
		what = "The service is busy."
	}
	if !le.RetryAt.After(m.clock) {
		return what + " Try again now."
	}
	at := le.RetryAt.In(m.clock.Location()).Format("15:04")
	return what + " Try again at " + at + " (in " + inWords(le.RetryAt.Sub(m.clock)) + ")."
}

func (m *Model) logInfo(msg string, kv ...any) {
	m.logger.Info(msg, append([]any{"addr", mask.Address(m.address), "client", m.client}, kv...)...)
}

// logWarn logs err with the address masked wherever it appears, since SMTP
// replies often echo it.
func (m *Model) logWarn(msg string, err error) {
	m.logger.Warn(msg, "addr", mask.Address(m.address), "client", m.client,
		"err", mask.In(err.Error(), m.address))
}
