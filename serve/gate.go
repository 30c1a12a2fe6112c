package serve

import (
	"context"
	"errors"
	"github.com/otplogin/otplogin/internal/lograte"
	"io"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
)

// GateConfig configures Gate. Zero fields take the defaults named below,
// the same as a Server's.
type GateConfig struct {
	// NewModel makes the login's model for one session. Required. The
	// session goes on to the next handler when the program quits and the
	// final model implements Verifier and says ok. For the otplogin
	// screens: ui.New(ui.Options{Service: svc, Client: s.Client, Remote:
	// true, Handoff: true, Logger: s.Logger, Context: s.Context()}).
	NewModel func(Session) tea.Model
	// RunLines, when set, serves a visitor who asked for plain line
	// prompts, as Config.RunLines; a result that implements Verifier and
	// says ok passes the session on.
	RunLines func(s Session, in io.Reader, out io.Writer) any

	// MaxSessions caps the logins in progress (1000); MaxSessionsPerClient
	// caps them per client (10), IPv6 prefixes counted as for a Server.
	// Sessions that went on to the next handler no longer count.
	MaxSessions, MaxSessionsPerClient int
	// MaxInputBytes, InputRate and InputAllowance bound the terminal input
	// the login reads, as the Config fields of the same names (64 KiB;
	// 32 KiB/s beyond 1 KiB per session). The next handler reads the
	// session as it is.
	MaxInputBytes, InputRate, InputAllowance int64
	// LoginTimeout bounds a login (10m): the program is then quit with a
	// line saying why and the session ends.
	LoginTimeout time.Duration
	// FPS caps the login's frame rate (60), as Config.FPS.
	FPS int
	// Logger gets the operator's log (log.Default()): one line when a
	// login starts and one when it ends, with its outcome and the address
	// masked. It never gets a code.
	Logger *log.Logger
}

// DefaultLoginTimeout bounds a login behind Gate when
// GateConfig.LoginTimeout is zero.
const DefaultLoginTimeout = 10 * time.Minute

func (c GateConfig) withDefaults() (GateConfig, error) {
	setDefault(&c.MaxSessions, DefaultMaxSessions)
	setDefault(&c.MaxSessionsPerClient, DefaultMaxSessionsPerClient)
	setDefault(&c.MaxInputBytes, 64<<10)
	setDefault(&c.InputRate, 32<<10)
	setDefault(&c.InputAllowance, 1<<10)
	setDefault(&c.LoginTimeout, DefaultLoginTimeout)
	setDefault(&c.FPS, 60)
	if c.Logger == nil {
		c.Logger = log.Default()
	}
	switch {
	case c.NewModel == nil:
		return c, errors.New("serve: GateConfig.NewModel is required")
	case c.MaxSessions < 0, c.MaxSessionsPerClient < 0:
		return c, errors.New("serve: session limits must not be negative")
	case c.MaxInputBytes < 0, c.InputRate < 0, c.InputAllowance < 0:
		return c, errors.New("serve: input bounds must not be negative")
	case c.LoginTimeout < 0:
		return c, errors.New("serve: LoginTimeout must not be negative")
	case c.FPS < 0 || c.FPS > 120:
		return c, errors.New("serve: FPS must be within 1..120")
	}
	return c, nil
}

// Gate returns a wish middleware that lets a session through to the next
// handler only once its visitor has proved an email address: it runs the
// login (NewModel's program, or RunLines) on the session first, and calls
// the next handler with the same session, whose context then holds the
// verified address (VerifiedAddress). A visitor who leaves (Esc, Ctrl+C),
// disconnects, sends too much, runs out of time, or whose login panics
// never reaches the next handler: the session ends with status 1 (130
// after Ctrl+C), and a line saying why when the login's screen did not,
// as a Server's sessions do. A Server's sessions are this gate in front of
// a handler that ends them with status 0.
//
// The gate applies the session-level limits of a Server (a PTY is
// required; the session caps, the input bounds and LoginTimeout above),
// with ClientKey of the session's remote address as the client. The
// connection-level ones (connection rate and caps, byte counts, timeouts,
// PROXY protocol) are the SSH server's business: a wish server should at
// least set wish.WithIdleTimeout and wish.WithMaxTimeout. It needs the SSH
// server's default emulated PTY, not ssh.AllocatePty. A Server's stats and
// shutdown notices are not part of it.
//
// The next handler reads the session's input from the first byte typed
// after the login's program ended, with the released bubbletea as with the
// patched copy: the input the program was waiting for when it ended is
// kept and read first. What was typed while the program still ran (before
// the code was accepted) was the login's.
func Gate(cfg GateConfig) (wish.Middleware, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	lim := newLimiter(Config{
		MaxSessions:          cfg.MaxSessions,
		MaxSessionsPerClient: cfg.MaxSessionsPerClient,
		Now:                  time.Now,
	})
	g := newSessionGate(cfg, lim, "login", noObserver{}, nil)
	return func(next ssh.Handler) ssh.Handler {
		return func(sess ssh.Session) { g.handle(sess, next) }
	}, nil
}

// verifiedKey is the context key of the verified address.
type verifiedKey struct{}

// VerifiedAddress returns the address that the visitor of ctx's session
// proved, in the context of a handler behind Gate (ssh.Session.Context,
// or a context derived from it). ok is false anywhere else.
func VerifiedAddress(ctx context.Context) (address string, ok bool) {
	address, ok = ctx.Value(verifiedKey{}).(string)
	return address, ok && address != ""
}

// sessionGate runs the login on SSH sessions: Gate, and a Server's session
// handling (which embeds it, so that its limiter, logger, shutdown signals
// and counters are the Server's).
type sessionGate struct {
	cfg   GateConfig
	log   *log.Logger
	lim   *limiter
	input *byteBudget // GateConfig.InputRate
	// noun names a login in the log: "session" for a Server, whose
	// sessions end with their login; "login" in front of another handler.
	noun string

	// A Server's shutdown; both channels stay nil (never ready) for Gate.
	stopping  chan struct{} // closed when shutdown starts
	graceOver chan struct{} // closed when ShutdownGrace has passed
	deadline  time.Time     // set before stopping is closed

	mu       sync.Mutex // guards closed and handlers.Add against handlers.Wait
	closed   bool
	handlers sync.WaitGroup

	// obs is told what happens (metrics); refusals bounds how many refused
	// sessions are logged each second.
	obs      Observer
	refusals *lograte.Limiter

	sessionsTotal atomic.Int64
	turned        atomic.Int64
	panics        atomic.Int64

	hooks testHooks
}

// testHooks let tests inject a panic into goroutines of this package that no
// real seam reaches (everything they run is this package's own code). All
// nil outside tests.
type testHooks struct {
	window func(width, height int) // watch, for each window size it forwards
}

// newSessionGate makes the gate for cfg, which has its defaults; obs is told
// what happens, and now is the refusal log's clock (nil: time.Now).
func newSessionGate(cfg GateConfig, lim *limiter, noun string, obs Observer, now func() time.Time) *sessionGate {
	return &sessionGate{
		cfg:   cfg,
		log:   cfg.Logger,
		lim:   lim,
		input: newByteBudget(cfg.InputRate, time.Now),
		noun:  noun,
		obs:   obs,
		refusals: lograte.New(lograte.Options{Now: now}, func(reason string, n int) {
			cfg.Logger.Info("refusals not logged", reasonKey(reason), reason, "suppressed", n)
		}),
	}
}

// countedOf returns the connection a Server's admitConn wrapped for ctx's
// connection, or nil behind another SSH server. Every connection a Server
// handles went through admitConn, so its own handlers need no nil check.
func countedOf(ctx ssh.Context) *countedConn {
	c, _ := ctx.Value(connCtxKey{}).(*countedConn)
	return c
}

// clientOf is the client key of sess: the one its connection was admitted
// under by a Server, else ClientKey of its remote address.
func clientOf(sess ssh.Session, conn *countedConn) string {
	if conn != nil {
		return conn.client
	}
	return ClientKey(sess.RemoteAddr())
}

// timeLimit is when a login that started at start is quit: LoginTimeout
// later, or for a Server, LoginTimeout after its connection was admitted,
// since MaxTimeout cuts the connection then.
func (s *sessionGate) timeLimit(conn *countedConn, start time.Time) time.Time {
	if conn != nil {
		start = conn.start
	}
	return start.Add(s.cfg.LoginTimeout)
}

// passedSession is a session as the handler after the gate gets it: its
// input goes on where the login's stopped, and its context holds the
// verified address.
type passedSession struct {
	ssh.Session
	in   *handoff
	term *terminal
	ctx  ssh.Context
}

func (p *passedSession) Read(b []byte) (int, error) { return p.in.next(b) }

func (p *passedSession) Context() ssh.Context { return p.ctx }

// Pty is the session's PTY with the newest window the client reported.
func (p *passedSession) Pty() (ssh.Pty, <-chan ssh.Window, bool) {
	pty := p.term.pty
	pty.Window = p.term.window()
	return pty, p.term.winch, true
}

// verifiedContext is a session's context with the verified address.
type verifiedContext struct {
	ssh.Context
	address string
}

func (c verifiedContext) Value(key any) any {
	if _, ok := key.(verifiedKey); ok {
		return c.address
	}
	return c.Context.Value(key)
}

// loginContext is a session's ssh.Context for the login alone: it ends
// when the login does, so that nothing the login started (requests,
// timers) outlives it while the next handler runs.
type loginContext struct {
	ssh.Context
	ctx context.Context // a child of the embedded one
}

func (c loginContext) Deadline() (time.Time, bool) { return c.ctx.Deadline() }
func (c loginContext) Done() <-chan struct{}       { return c.ctx.Done() }
func (c loginContext) Err() error                  { return c.ctx.Err() }
func (c loginContext) Value(key any) any           { return c.ctx.Value(key) }

// handoff passes a session's input from the login's program to the next
// handler without losing a byte. An SSH channel's Read cannot be
// cancelled, so when the program ends, its input goroutine is usually
// still waiting in a Read (bubbletea's cancel reader gives up on a reader
// that is not a file; the patched copy drops what that Read returns). The
// bytes that Read returns after pass are kept for the next handler, and
// the program gets io.EOF instead.
type handoff struct {
	r io.Reader

	mu      sync.Mutex
	landed  sync.Cond // signalled when the program's Read in flight returns
	reading bool      // the program has a Read in flight
	passed  bool      // the input is the next handler's
	held    []byte    // what the program's last Read got after pass
	err     error     // and the error it got with it
}

// Read is the program's side.
func (h *handoff) Read(p []byte) (n int, err error) {
	h.mu.Lock()
	if h.passed {
		h.mu.Unlock()
		return 0, io.EOF
	}
	h.reading = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.reading = false
		if h.passed {
			h.held = append(h.held, p[:n]...)
			h.err = err
			n, err = 0, io.EOF
			h.landed.Broadcast()
		}
	}()
	return h.r.Read(p)
}

func newHandoff(r io.Reader) *handoff {
	h := &handoff{r: r}
	h.landed.L = &h.mu
	return h
}

// pass gives the input to the next handler.
func (h *handoff) pass() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.passed = true
}

// next is the next handler's side: what the program's last Read got
// first, then the session itself.
func (h *handoff) next(p []byte) (int, error) {
	h.mu.Lock()
	for h.reading {
		h.landed.Wait()
	}
	if len(h.held) > 0 {
		n := copy(p, h.held)
		h.held = h.held[n:]
		h.mu.Unlock()
		return n, nil
	}
	if err := h.err; err != nil {
		h.mu.Unlock()
		return 0, err
	}
	h.mu.Unlock()
	return h.r.Read(p)
}
