package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"charm.land/ssh"
	bm "charm.land/wish/v2/bubbletea"

	"github.com/otplogin/otplogin/internal/mask"
)

// What a user sees when the server ends or refuses a session. Fixed lines:
// never an error text, a code or where mail goes.
const (
	lineNoPTY          = "otplogin needs an interactive terminal: connect with ssh -t."
	lineBusy           = "The server is busy. Please try again in a minute."
	lineClientSessions = "Too many sessions from your address. Close one and try again."
	lineShutdown       = "The server is shutting down. Please try again in a minute."
	lineInput          = "Too much input; closing the session."
	lineEnv            = "Too many environment variables; set fewer and try again."
	lineTimeLimit      = "Session time limit reached. Please reconnect to go on."
	lineError          = "Sorry, something went wrong. Please try again."
)

// Outcomer is what a session's final model may implement so that the end of
// the session is logged with its outcome (e.g. "verified", "cancelled").
type Outcomer interface{ Outcome() string }

// Verifier is what a session's final model may implement so that the end of
// a successful session is logged with the verified address, masked.
type Verifier interface {
	Verified() (address string, ok bool)
}

// The largest window a program is told about. The client picks the size,
// and bubbletea keeps a cell buffer of that size for as long as the session
// lasts, so an unbounded pty-req would let one client take the server's
// memory. 64x16 is what the login needs, and its buffer is still the
// largest part of an idle session (docs/PERFORMANCE.md, F3); a bigger
// terminal shows the login in its top-left corner.
const (
	maxCols = 64
	maxRows = 16
)

// clampWindow bounds the window a client reports. A client without a
// terminal of its own (ssh -tt with its input from a pipe) reports 0x0,
// which would hide the whole login; it gets the largest window instead.
func clampWindow(w ssh.Window) (width, height int) {
	if w.Width <= 0 {
		w.Width = maxCols
	}
	if w.Height <= 0 {
		w.Height = maxRows
	}
	return min(w.Width, maxCols), min(w.Height, maxRows)
}

// endReason says why a session's program stopped.
type endReason int32

const (
	endQuit       endReason = iota // the program quit by itself
	endDisconnect                  // connection closed: client, idle or max timeout
	endShutdown                    // quit by the server at the end of the grace period
	endInput                       // MaxInputBytes exceeded
	endInputRate                   // InputRate spent when the session needed more
	endTimeLimit                   // quit by the server just before MaxTimeout
	endError                       // the program failed
	endPanic                       // a panic in the program or this session's goroutines
)

func (r endReason) String() string {
	return [...]string{"quit", "disconnected", "shutdown", "input_limit", "input_rate", "time_limit", "error", "panic"}[r]
}

// handle is the gate's handler: it runs the login and passes a session
// whose visitor verified an address on to next.
func (s *sessionGate) handle(sess ssh.Session, next ssh.Handler) {
	if !s.track() {
		return
	}
	defer s.handlers.Done()
	if passed := s.handleSession(sess); passed != nil {
		next(passed)
	}
}

// handleSession runs one SSH session's login: it checks for a PTY and the
// session caps, then runs a bubbletea program until it quits, the
// connection ends or the server shuts down. It returns the session for the
// next handler if the visitor verified an address; otherwise it has ended
// the session and returns nil.
func (s *sessionGate) handleSession(sess ssh.Session) (passed *passedSession) {
	start := time.Now()
	conn := countedOf(sess.Context()) // nil in front of another server's handler
	client := clientOf(sess, conn)
	logger := s.connLogger(sess.Context())
	defer func() {
		// bubbletea recovers panics in the model itself; this catches the
		// rest (NewModel, this handler) so only this session ends.
		if r := recover(); r != nil {
			s.logPanic(logger, "session", r, debug.Stack())
			refuse(sess, lineError)
			passed = nil
		}
	}()

	turnAway := func(reason, line string, kv ...any) {
		s.turned.Add(1)
		s.logRefusal(logger, s.noun+" refused", client, reason, kv...)
		refuse(sess, line)
	}
	pty, winch, ok := sess.Pty()
	if !ok {
		turnAway(RefusedNoPTY, lineNoPTY)
		return nil
	}
	if !sess.EmulatedPty() {
		// ssh.AllocatePty: the SSH library copies the session's input
		// into a PTY of its own, so the login could read only part of it.
		logger.Error("serve.Gate needs the SSH server's default emulated PTY, not ssh.AllocatePty")
		s.turned.Add(1)
		refuse(sess, lineError)
		return nil
	}
	select {
	case <-s.stopping:
		turnAway(RefusedShuttingDown, lineShutdown)
		return nil
	default:
	}
	if err := s.lim.admitSession(client); err != nil {
		line := lineBusy
		if errors.Is(err, errClientSessions) {
			line = lineClientSessions
		}
		turnAway(refusalOf(err), line, prefixOf(err)...)
		return nil
	}
	defer s.lim.releaseSession(client)
	s.sessionsTotal.Add(1)
	s.obs.SessionStarted()
	// Every started session is reported ended, a panic included.
	ended, outcome := endPanic, ""
	defer func() { s.obs.SessionEnded(ended.String(), outcome) }()
	logger.Info(s.noun+" start", "client", client)

	// The login's context ends with the login, so that nothing it started
	// (requests, timers) outlives it while the next handler runs.
	ctx, cancel := context.WithCancel(sess.Context())
	defer cancel()
	login := Session{Session: sess, Client: client, Logger: logger, ctx: loginContext{sess.Context(), ctx}}
	hand := newHandoff(sess)
	term := &terminal{pty: pty, winch: winch}
	in := &inputLimit{r: hand, left: s.cfg.MaxInputBytes, free: s.cfg.InputAllowance, budget: s.input}
	if s.cfg.RunLines != nil && wantsLines(sess.Environ()) {
		// Nothing else takes window changes while the lines run.
		keep, kept := make(chan struct{}), make(chan struct{})
		go func() { defer close(kept); term.drain(keep) }()
		final, end, out := s.runLines(sess, login, logger, conn, in, start)
		ended, outcome = end, out
		if end != endQuit {
			return nil
		}
		close(keep) // the next handler takes them, if there is one
		<-kept
		if passed = s.pass(sess, final, hand, term); passed == nil {
			go term.drain(nil)
		}
		return passed
	}
	width, height := clampWindow(pty.Window)
	opts := append(bm.MakeOptions(sess),
		tea.WithWindowSize(width, height),
		tea.WithInput(&validUTF8{r: in}), // the limits count what the visitor sent
		// A program's own signal handler would turn the server's SIGINT
		// into an immediate quit of every session, skipping the grace.
		tea.WithoutSignalHandler(),
		tea.WithFPS(s.cfg.FPS),
	)
	p := tea.NewProgram(s.cfg.NewModel(login), opts...)

	var reason atomic.Int32
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		defer func() {
			if r := recover(); r != nil {
				s.logPanic(logger, "watch", r, debug.Stack())
				reason.Store(int32(endPanic))
				p.Kill()
			}
		}()
		s.watch(sess.Context(), p, [2]int{width, height}, term, s.timeLimit(conn, start), done, &reason)
	}()
	final, err := p.Run()
	close(done)
	<-watched

	end := endReason(reason.Load())
	switch {
	case end == endPanic: // logged by the watch goroutine's recover
	case in.ended.Load() != 0:
		end = endReason(in.ended.Load())
	case errors.Is(err, tea.ErrProgramPanic):
		end = endPanic
		s.logPanic(logger, "program", err, panicStack(err))
	case sess.Context().Err() != nil:
		end = endDisconnect
	case err != nil && end == endQuit:
		end = endError
	}
	outcome = s.logEnd(logger, start, end, conn, final, err)
	ended = end

	if end == endQuit {
		if passed = s.pass(sess, final, hand, term); passed != nil {
			return passed
		}
	}
	// The session ends here. The SSH library's request loop blocks on a
	// window change until it is taken: drain them until that loop ends
	// with the channel, or a client that keeps resizing after the program
	// ended would keep the loop, and the session it holds, for good.
	go term.drain(nil)
	switch end {
	case endQuit:
		return nil // ended by pass
	case endDisconnect:
		return nil // nobody is listening
	// The leading newline: the program may have left the cursor mid-line.
	case endShutdown:
		refuse(sess, "\n"+lineShutdown)
	case endInput, endInputRate:
		refuse(sess, "\n"+lineInput)
	case endTimeLimit:
		refuse(sess, "\n"+lineTimeLimit)
	case endError, endPanic:
		refuse(sess, "\n"+lineError)
	}
	return nil
}

// pass returns the session for the next handler if final (the final model
// or RunLines' result) verified an address; otherwise it ends the session
// with the local app's statuses and returns nil.
func (s *sessionGate) pass(sess ssh.Session, final any, hand *handoff, term *terminal) *passedSession {
	v, ok := final.(Verifier)
	var addr string
	if ok {
		addr, ok = v.Verified()
	}
	if !ok || addr == "" {
		exitAsLocal(sess, final)
		return nil
	}
	hand.pass()
	return &passedSession{Session: sess, in: hand, term: term, ctx: verifiedContext{sess.Context(), addr}}
}

// endSession is a Server's handler after the gate, for a visitor who
// verified: the session ends with status 0, as the local app's does.
func endSession(sess ssh.Session) {
	_, winch, _ := sess.Pty()
	go (&terminal{winch: winch}).drain(nil) // as for a session the gate ends
	_ = sess.Exit(0)
}

// terminal is a session's PTY as the gate saw it. ssh.Session.Pty reads
// the window that the SSH library's request loop writes on each window
// change, without a lock; the gate takes the window from the changes it
// receives instead, and hands the newest on to the next handler.
type terminal struct {
	pty   ssh.Pty // as the pty-req set it; Window is the first window
	winch <-chan ssh.Window
	last  atomic.Pointer[ssh.Window] // the newest window change taken
}

// took records a window change taken from winch.
func (t *terminal) took(w ssh.Window) { t.last.Store(&w) }

// window is the newest window the client reported.
func (t *terminal) window() ssh.Window {
	if w := t.last.Load(); w != nil {
		return *w
	}
	return t.pty.Window
}

// drain takes window changes until the channel closes, or until keep is
// closed because the next handler takes them. It runs on a goroutine of
// its own for one session; nothing in it can panic (channel reads and an
// atomic store), so it has no recover.
func (t *terminal) drain(keep <-chan struct{}) {
	for {
		select {
		case w, ok := <-t.winch:
			if !ok {
				return
			}
			t.took(w)
		case <-keep:
			return
		}
	}
}

// exitAsLocal ends a session that verified nothing with the local app's
// statuses: 130 when the person left with Ctrl+C (as a shell reports an
// interrupt), 1 otherwise (Esc, or a model that quit by itself).
func exitAsLocal(sess ssh.Session, final any) {
	if o, ok := final.(Outcomer); ok && o.Outcome() == "interrupted" {
		_ = sess.Exit(130)
		return
	}
	_ = sess.Exit(1)
}

// wantsLines reports whether the client asked for line prompts: ACCESSIBLE
// set to a true value (ssh -o SetEnv=ACCESSIBLE=1), as huh and gum read it.
func wantsLines(environ []string) bool {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "ACCESSIBLE="); ok {
			b, err := strconv.ParseBool(v)
			return err == nil && b
		}
	}
	return false
}

// runLines runs a session as RunLines' plain lines instead of a program,
// and returns RunLines' result, how the lines ended (endQuit: by
// themselves) and the outcome; for any other end the session has been told
// why. A shutdown's notice goes to Session.Notices; the time limit and the
// end of a shutdown's grace end the lines as they end a program (watch); a
// disconnect or the SSH server's timeouts end the session's context, which
// RunLines gets.
func (s *sessionGate) runLines(sess ssh.Session, login Session, logger *log.Logger, conn *countedConn, in *inputLimit, start time.Time) (final any, end endReason, outcome string) {
	ctx, cancel := context.WithDeadlineCause(login.ctx, s.timeLimit(conn, start), errTimeLimit)
	defer cancel()
	shutdown, cancelShutdown := context.WithCancelCause(ctx)
	defer cancelShutdown(nil)
	// One notice, the shutdown's, is ever sent: with room for it, the send
	// never waits for RunLines.
	notices := make(chan string, 1)
	// As in watch, graceOver is watched only once the notice is out.
	// Nothing here can panic: selects, a send into the room and a cancel.
	go func() {
		select {
		case <-s.stopping: // nil, never ready, for Gate
			notices <- ShutdownMsg{Deadline: s.deadline}.Notice()
		case <-shutdown.Done():
			return
		}
		select {
		case <-s.graceOver:
			cancelShutdown(errGraceOver)
		case <-shutdown.Done():
		}
	}()
	login.ctx = loginContext{sess.Context(), shutdown}
	login.notices = notices
	final = s.cfg.RunLines(login, &validUTF8{r: in}, sess)
	end = endQuit
	switch cause := context.Cause(shutdown); {
	case in.ended.Load() != 0:
		end = endReason(in.ended.Load())
	case sess.Context().Err() != nil:
		end = endDisconnect
	case errors.Is(cause, errGraceOver):
		end = endShutdown
	case errors.Is(cause, errTimeLimit):
		end = endTimeLimit
	}
	outcome = s.logEnd(logger, start, end, conn, final, nil)
	switch end {
	case endInput, endInputRate:
		refuse(sess, "\r\n"+lineInput)
	case endShutdown:
		refuse(sess, "\r\n"+lineShutdown)
	case endTimeLimit:
		refuse(sess, "\r\n"+lineTimeLimit)
	}
	return final, end, outcome
}

// Why runLines' context ended, when the session's had not.
var (
	errTimeLimit = errors.New("login time limit")
	errGraceOver = errors.New("shutdown grace over")
)

// watch feeds window changes and shutdown notices to p until done is closed,
// and quits p at timeLimit. size is the window p started with.
func (s *sessionGate) watch(ctx ssh.Context, p *tea.Program, size [2]int, term *terminal, timeLimit time.Time, done <-chan struct{}, reason *atomic.Int32) {
	winch := term.winch
	// graceOver is watched only once the notice is out, so that a slow
	// watcher cannot skip the notice when both channels are closed.
	stopping, graceOver := s.stopping, (<-chan struct{})(nil)
	limit := time.NewTimer(time.Until(timeLimit))
	defer limit.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			reason.Store(int32(endDisconnect))
			p.Quit()
			return
		case w, ok := <-winch:
			if !ok {
				winch = nil
				continue
			}
			term.took(w)
			// The first value is the pty-req's window, which p already
			// has; a client may also repeat a size, or exceed the clamp.
			if width, height := clampWindow(w); [2]int{width, height} != size {
				if s.hooks.window != nil {
					s.hooks.window(width, height)
				}
				size = [2]int{width, height}
				p.Send(tea.WindowSizeMsg{Width: width, Height: height})
			}
		case <-stopping:
			stopping, graceOver = nil, s.graceOver
			p.Send(ShutdownMsg{Deadline: s.deadline})
		case <-graceOver:
			reason.Store(int32(endShutdown))
			p.Quit()
			return
		case <-limit.C:
			reason.Store(int32(endTimeLimit))
			p.Quit()
			return
		}
	}
}

// logEnd logs the end of a login and returns the final model's outcome.
// For a Server's session, bytes_in, what the connection sent so far (SSH
// framing included), helps tune MaxConnBytes.
func (s *sessionGate) logEnd(logger *log.Logger, start time.Time, end endReason, conn *countedConn, final any, err error) (outcome string) {
	kv := []any{"duration", time.Since(start).Round(time.Millisecond), "end", end.String()}
	if conn != nil {
		kv = append(kv, "bytes_in", conn.read.Load())
	}
	if o, ok := final.(Outcomer); ok {
		outcome = o.Outcome()
		kv = append(kv, "outcome", outcome)
	}
	if v, ok := final.(Verifier); ok {
		if addr, ok := v.Verified(); ok {
			kv = append(kv, "addr", mask.Address(addr))
		}
	}
	if end == endError {
		kv = append(kv, "err", err)
		logger.Error(s.noun+" end", kv...)
		return outcome
	}
	logger.Info(s.noun+" end", kv...)
	return outcome
}

// refuse prints one line to the user and ends the session with status 1.
func refuse(sess ssh.Session, line string) {
	_, _ = fmt.Fprintln(sess.Stderr(), line)
	_ = sess.Exit(1)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

var (
	errInputLimit = errors.New("session input limit reached")
	errInputRate  = errors.New("server input rate spent")
)

// inputLimit ends a session's input after a fixed number of bytes, or when
// it needs more of the server's input budget than is left: the first free
// bytes are the session's own, the rest are taken from budget. Only the
// program's input goroutine reads it.
type inputLimit struct {
	r          io.Reader
	left, free int64
	budget     *byteBudget
	ended      atomic.Int32 // endInput or endInputRate once the input ended
}

func (l *inputLimit) Read(p []byte) (int, error) {
	switch endReason(l.ended.Load()) {
	case endInput:
		return 0, errInputLimit
	case endInputRate:
		return 0, errInputRate
	}
	if l.left <= 0 {
		return 0, l.end(endInput, errInputLimit)
	}
	// At most one chunk beyond the free bytes, which the budget can grant.
	n, err := l.r.Read(p[:min(int64(len(p)), l.left, l.free+int64(l.budget.chunk))])
	l.left -= int64(n)
	free := min(int64(n), l.free)
	l.free -= free
	if charged := int64(n) - free; charged > 0 && !l.budget.tryTake(int(charged)) {
		return 0, l.end(endInputRate, errInputRate)
	}
	return n, err
}

func (l *inputLimit) end(why endReason, err error) error {
	l.ended.Store(int32(why))
	return err
}
