// Package ui is the terminal face of otplogin: a Bubble Tea model that takes
// an email address, has the otp service mail a one-time code to it, and
// checks the code the person types.
//
// The flow is email -> sending -> code -> verified. Each screen is a small
// model in a file of its own, with its state, keys, texts and behaviour:
// email.go, sending.go, code.go and result.go. Model composes them: it owns
// the requests to the Service and the frame every screen shares (frame.go:
// the dev-mode line, the title, the banner and the help line). RunAccessible
// (accessible.go) runs the same flow, with the same rules and texts, as plain
// lines for screen readers and simple terminals.
//
// A parent program can run the login as one of its steps: with
// Options.Embedded the Model reports DoneMsg instead of quitting and draws
// in the box the parent gives it (SetSize).
//
// The model never blocks: every Service call runs in a tea.Cmd under a
// deadline and comes back as a message tagged with a request id, so a late
// answer to a request the person walked away from changes nothing. Nothing
// ticks while the model is idle: the cursor does not blink, the spinner runs
// only while a request is out, and the countdown ticks once a second only
// while the code screen is shown.
//
// What the person sees never contains internals (SMTP replies, store
// errors) or the code itself; the operator's log gets the details with the
// address masked.
package ui

import (
	"context"
	"errors"
	"io"
	"time"

	"charm.land/bubbles/v2/key"
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
	// server saves messages; the UI shows a DEV MODE line with it.
	DevOutbox string
	// LogFile, when set and not Remote, is where the operator's log goes;
	// a failure whose reason only the log has (mail not working, the
	// service unavailable) names it.
	LogFile string
	// Remote marks an SSH session: the outbox and the log file are never
	// shown, the UI draws inline instead of on the alternate screen, and
	// the success screen stays up until a key or a short timer instead of
	// quitting at once. The visitor sees the address they typed in full;
	// the log masks it.
	Remote bool
	// Handoff says that something else takes the terminal over when the
	// login ends, as the next handler after serve.Gate does: the program
	// quits as soon as the code is accepted, leaving the success line,
	// instead of showing a Remote success screen that waits for a key.
	Handoff bool
	// Embedded makes the Model one step of a parent program instead of
	// the whole of one: when the login ends it returns a command that
	// reports DoneMsg instead of quitting the program, and its view sets
	// no alternate screen and no window title, so that the parent decides
	// where the login's lines go. The parent gives it its size (SetSize,
	// or by forwarding tea.WindowSizeMsg), and forwards it every message
	// it does not handle itself while the login is shown: keys, pastes,
	// the answer to the background colour query that Init sends, and the
	// Model's own messages (requests, timers).
	Embedded bool
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

// Screen names a screen of the login. The view sets the terminal's window
// title to it, which is how a program that drives the UI (the load tool, a
// test) tells the screens apart without reading the words meant for people,
// which change. The values are part of the API: change them only together
// with what reads them.
type Screen string

// The screens, in the order a login meets them.
const (
	ScreenEmail    Screen = "otplogin: email"    // typing the address
	ScreenSending  Screen = "otplogin: sending"  // a code is being requested
	ScreenCode     Screen = "otplogin: code"     // typing the code
	ScreenVerified Screen = "otplogin: verified" // the code was right
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

// Model is the Bubble Tea model for the whole flow. Create it with New.
//
// Its methods take a pointer and Update returns the same pointer: a Model
// holds a text input, which is large, and a value receiver would copy it to
// the heap on every message (docs/PERFORMANCE.md has what that cost).
type Model struct {
	config // set by New, never changed
	after  func(context.Context, time.Duration, tea.Msg) tea.Cmd
	shared *Cache // Options.Cache

	// The frame; see frame.go.
	width, height int
	st            *styles
	// clock is the time of the last Update; View shows it, so View stays a
	// pure function of the model.
	clock  time.Time
	cache  *frameCache // what View draws that changes rarely; see refresh
	banner banner      // the answer to the person's last action
	notice string      // a line from outside, e.g. the server shutting down

	// The screens. The code screen is made when the first code is sent,
	// so that a session idling on the email screen holds one text input.
	on      Screen
	email   emailScreen
	sending sendingScreen
	code    *codeScreen
	result  resultScreen

	address string // normalised address of the current request
	reqID   uint64 // id of the one request whose answer counts
	cancel  context.CancelFunc
	outcome string
	done    bool // an Embedded login ended and reported DoneMsg
}

// screen is one step of the flow, kept in a file of its own with its state,
// keys, texts and behaviour. Model shows one at a time and hands it every
// message the flow does not handle itself.
type screen interface {
	// update handles a message; the screen calls back into the flow (m)
	// to request a code, verify one, or move to another screen.
	update(m *Model, msg tea.Msg) tea.Cmd
	// enter is called each time the screen is shown.
	enter(m *Model) tea.Cmd
	// keys lists the bindings that work now, for the help line; the
	// frame adds ctrl+c.
	keys(m *Model) helpKeys
	// common renders the parts every session shows alike at width iw,
	// which a Cache shares; own adds the parts that name the address
	// (only called when namesAddress).
	common(c *frameCache, st *styles, iw int)
	namesAddress() bool
	own(c *frameCache, st *styles, iw int, address string)
	// status is a line that changes with the clock (the countdown), or "".
	status(m *Model) string
	// view appends the screen's sections to secs, taking what changes
	// rarely from c.
	view(m *Model, c *frameCache, secs []section) []section
}

// config is Options with the defaults filled in, as the Model and
// accessible mode both use them.
type config struct {
	svc     Service
	client  string
	now     func() time.Time
	outbox  string // shown to the person; "" when Remote
	logFile string // named by failures the log explains; "" when Remote
	appName string // before every screen's title; "" for none
	remote  bool
	handoff bool
	embed   bool
	timeout time.Duration
	ctx     context.Context
	logger  *log.Logger
	codeLen int
}

func newConfig(opts Options) config {
	c := config{
		svc:     opts.Service,
		client:  opts.Client,
		now:     opts.Now,
		remote:  opts.Remote,
		handoff: opts.Handoff,
		embed:   opts.Embedded,
		appName: safe(opts.AppName),
		timeout: opts.RequestTimeout,
		ctx:     opts.Context,
		logger:  opts.Logger,
		codeLen: 6,
	}
	if !opts.Remote {
		c.outbox = safe(opts.DevOutbox)
		c.logFile = safe(opts.LogFile)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.timeout <= 0 {
		c.timeout = DefaultRequestTimeout
	}
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	if c.logger == nil {
		c.logger = log.New(io.Discard)
	}
	if c.svc != nil && c.svc.CodeLength() > 0 {
		c.codeLen = c.svc.CodeLength()
	}
	return c
}

// New returns the model for one session.
func New(opts Options) *Model {
	m := &Model{
		config:  newConfig(opts),
		shared:  opts.Cache,
		st:      theme(true), // until the terminal says otherwise
		outcome: outcomeIdle,
		after:   after,
		on:      ScreenEmail,
	}
	m.clock = m.now()
	m.email.init(m.st)
	m.fitInputs()
	m.refresh()
	return m
}

// Init asks the terminal for its background colour; the answer picks the
// theme (dark when there is none, e.g. a plain SSH client).
func (m *Model) Init() tea.Cmd {
	return tea.RequestBackgroundColor
}

// Verified returns the verified address once the code was accepted.
func (m *Model) Verified() (address string, ok bool) {
	if m.on != ScreenVerified {
		return "", false
	}
	return m.address, true
}

// Outcome is one word for the operator's log: "verified"; "cancelled" when
// the person left with Esc, "interrupted" with Ctrl+C; otherwise the last thing that happened: "idle" (nothing
// requested), "sent", "wrong-code", "expired", "too-many-attempts",
// "no-code", "limited", "delivery-failed" or "unavailable".
func (m *Model) Outcome() string { return m.outcome }

// Screen is the screen shown now.
func (m *Model) Screen() Screen { return m.on }

// DoneMsg is what an Embedded Model reports when the login ends, once:
// the code was accepted, or the person left.
type DoneMsg struct {
	// Address is the verified address; "" unless Verified.
	Address  string
	Verified bool
	// Outcome is Model.Outcome's word: "verified", "cancelled" when the
	// person left with Esc, "interrupted" with Ctrl+C.
	Outcome string
}

// SetSize gives the Model the box it draws in, as a tea.WindowSizeMsg
// does: an Embedded Model's parent gives it the part of the window that it
// leaves to the login. The view is never wider or taller than the box.
func (m *Model) SetSize(width, height int) {
	m.resize(width, height)
	m.refresh()
}

func (m *Model) resize(width, height int) {
	m.width, m.height = max(width, 0), max(height, 0)
	m.fitInputs()
}

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
// whole finished program reachable until it fires (tea.Tick did, for the
// success screen's linger). It is a Model field so tests can fire timers
// themselves instead of sleeping.
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

// notice is a message from outside the UI with a line for the person, such
// as serve.ShutdownMsg; matched by method so that ui does not import serve.
type notice interface{ Notice() string }

// quitKey works on every screen.
var quitKey = key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit"))

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if m.done {
		// Nothing more to report; dropping the timers' messages ends
		// their chains.
		return m, nil
	}
	m.clock = m.now()
	cmd := m.update(msg)
	m.refresh()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return nil
	case tea.BackgroundColorMsg:
		m.setTheme(msg.IsDark())
		return nil
	case tea.KeyPressMsg:
		if key.Matches(msg, quitKey) {
			return m.quit(outcomeInterrupted)
		}
	case notice:
		// e.g. the SSH server shutting down: say so, keep the screen.
		m.notice = safe(msg.Notice())
		return nil
	case codeSentMsg:
		return m.onCodeSent(msg)
	case verifyResultMsg:
		if msg.id != m.reqID || m.on != ScreenCode {
			return nil // answer to a request the person walked away from
		}
		m.cancel = nil
		return m.code.onVerify(m, msg.err)
	}
	return m.screen().update(m, msg)
}

// screen is the screen shown now.
func (m *Model) screen() screen {
	switch m.on {
	case ScreenSending:
		return &m.sending
	case ScreenCode:
		return m.code
	case ScreenVerified:
		return &m.result
	}
	return &m.email
}

// show switches to screen s.
func (m *Model) show(s Screen) tea.Cmd {
	m.on = s
	return m.screen().enter(m)
}

func (m *Model) setTheme(isDark bool) {
	m.st = theme(isDark)
	m.email.input.SetStyles(m.st.input)
	if m.code != nil {
		m.code.input.SetStyles(m.st.input)
	}
}

// quit ends the login; outcome (cancelled with Esc, interrupted with
// Ctrl+C) is what the log and the exit status say, unless the person had
// already verified.
func (m *Model) quit(outcome string) tea.Cmd {
	m.dropRequest()
	if m.on != ScreenVerified {
		m.outcome = outcome
	}
	return m.end()
}

// end ends the login: it quits the program, or reports DoneMsg to an
// Embedded Model's parent.
func (m *Model) end() tea.Cmd {
	if !m.embed {
		return tea.Quit
	}
	m.done = true
	addr, ok := m.Verified()
	done := DoneMsg{Address: addr, Verified: ok, Outcome: m.outcome}
	return func() tea.Msg { return done }
}

// dropRequest cancels the request in flight, if any, and makes sure its
// answer is ignored when it comes.
func (m *Model) dropRequest() {
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
	m.reqID++
}

func (m *Model) newRequest() context.Context {
	m.dropRequest()
	ctx, cancel := context.WithTimeout(m.ctx, m.timeout)
	m.cancel = cancel
	return ctx
}

// requestCode asks the Service to mail a code to address and shows the
// sending screen until it answers; Esc there, or a failure, goes back to the
// screen shown now.
func (m *Model) requestCode(address string) tea.Cmd {
	ctx := m.newRequest()
	m.address = address
	m.banner = banner{}
	m.sending.from = m.on
	return tea.Batch(m.show(ScreenSending), requestCmd(ctx, m.cancel, m.svc, m.reqID, address, m.client))
}

// verifyCode asks the Service whether code is right; the answer goes to the
// code screen.
func (m *Model) verifyCode(code string) tea.Cmd {
	ctx := m.newRequest()
	m.banner = banner{}
	return verifyCmd(ctx, m.cancel, m.svc, m.reqID, m.address, m.client, code)
}

func (m *Model) onCodeSent(msg codeSentMsg) tea.Cmd {
	if msg.id != m.reqID || m.on != ScreenSending {
		return nil // answer to a request the person walked away from
	}
	m.cancel = nil
	if msg.err != nil {
		return m.requestFailed(msg.err)
	}
	t := msg.ticket
	resent := m.sending.from == ScreenCode && !t.AlreadySent
	if t.Address != "" {
		m.address = t.Address
	}
	m.outcome = outcomeSent
	m.logInfo("code requested", "already_sent", t.AlreadySent, "maybe_sent", t.MaybeSent)
	switch {
	case t.MaybeSent:
		m.banner = banner{toneInfo, maybeSentText}
	case resent:
		m.banner = banner{toneInfo, newCodeText}
	}
	if m.code == nil {
		m.code = newCodeScreen(m)
	}
	m.code.start(t)
	return m.show(ScreenCode)
}

// requestFailed says why a Request failed and goes back to the screen it
// came from, or to the email screen if the address is at fault.
func (m *Model) requestFailed(err error) tea.Cmd {
	var ae *otp.AddressError
	if errors.As(err, &ae) {
		// The service's own check disagreed with ours; show its reason
		// where the typed address is.
		m.email.judged(err)
		m.logWarn("code request failed", err)
		return m.show(ScreenEmail)
	}
	v := requestFailure(err, m.clock, m.logFile)
	m.outcome = v.outcome
	m.banner = banner{toneFailure, v.text}
	m.logRequestFailure(m.address, err)
	if v.next == nextAddress {
		return m.show(ScreenEmail)
	}
	return m.show(m.sending.from)
}

// next is what is left for the person to do after a failure.
type next uint8

const (
	nextRetry   next = iota // try again on the same screen
	nextNewCode             // the code is dead: only a new one helps
	nextAddress             // type the address again
)

// verdict is what a failed Service call means for the person: the word for
// the operator's log ("" keeps the last one), the sentence to show, and
// what is left to do. Both the screens and accessible mode use it, so they
// say the same things.
type verdict struct {
	outcome string
	text    string
	next    next
}

// requestFailure judges a failed Request. logFile, if set, is named when
// the log has the reason.
func requestFailure(err error, now time.Time, logFile string) verdict {
	var (
		ae *otp.AddressError
		le *otp.LimitError
		de *otp.DeliveryError
	)
	switch {
	case errors.As(err, &ae):
		return verdict{"", addressProblem(err), nextAddress}
	case errors.As(err, &le):
		return verdict{outcomeLimited, limitText(le, now), nextRetry}
	case errors.As(err, &de) && de.AddressRejected:
		return verdict{outcomeDelivery, "We could not send to that address. Check it and try again.", nextAddress}
	case errors.As(err, &de):
		return verdict{outcomeDelivery, seeLog("Mail is not working right now. Try again later.", logFile), nextRetry}
	}
	return verdict{outcomeUnavailable, seeLog(unavailableText, logFile), nextRetry}
}

const unavailableText = "Service temporarily unavailable, try again."

// seeLog adds where the reason is to text, when the person may read the
// log (the local app; never an SSH visitor). The path is inside the
// sentence, so that no full stop seems to be part of it.
func seeLog(text, logFile string) string {
	if logFile == "" {
		return text
	}
	return text + " The log file " + logFile + " says why."
}

// limitText says which limit refused and when to come back.
func limitText(le *otp.LimitError, now time.Time) string {
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
	default:
		what = "The service is busy."
	}
	if !le.RetryAt.After(now) {
		return what + " Try again now."
	}
	at := le.RetryAt.In(now.Location()).Format("15:04")
	return what + " Try again at " + at + " (in " + inWords(le.RetryAt.Sub(now)) + ")."
}

func (m *Model) logInfo(msg string, kv ...any) { m.config.logInfo(m.address, msg, kv...) }

func (m *Model) logWarn(msg string, err error) { m.config.logWarn(m.address, msg, err) }

func (c *config) logInfo(address, msg string, kv ...any) {
	c.logger.Info(msg, append([]any{"addr", mask.Address(address), "client", c.client}, kv...)...)
}

// logRequestFailure logs a failed Request: a refusal by the limits at
// debug, since it is the limits working and a flood of them must not flood
// the log (serve logs them at info, a few a second); anything else at warn.
func (c *config) logRequestFailure(address string, err error) {
	if le := (*otp.LimitError)(nil); errors.As(err, &le) {
		c.logger.Debug("code request refused", "addr", mask.Address(address), "client", c.client, "limit", le.Kind.String())
		return
	}
	c.logWarn(address, "code request failed", err)
}

// logWarn logs err with the address masked wherever it appears, since SMTP
// replies often echo it.
func (c *config) logWarn(address, msg string, err error) {
	c.logger.Warn(msg, "addr", mask.Address(address), "client", c.client,
		"err", mask.In(err.Error(), address))
}
