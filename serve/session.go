package serve

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
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
// lasts (about 112 bytes a cell; two buffers without the patched copy in
// third_party): a pty-req of 60000x60000 once took this server to 3 GB.
// 64x16 is what the login needs, and at 115 KB it is the largest part of an
// idle session; a bigger terminal shows the login in its top-left corner.
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

// handleSession runs one SSH session: it checks for a PTY and the session
// caps, then runs a bubbletea program until it quits, the connection ends or
// the server shuts down.
func (s *Server) handleSession(sess ssh.Session) {
	if !s.track() {
		return
	}
	defer s.handlers.Done()
	start := time.Now()
	conn := connOf(sess.Context())
	client := conn.client
	logger := s.connLogger(sess.Context())
	defer func() {
		// bubbletea recovers panics in the model itself; this catches the
		// rest (NewModel, this handler) so only this session ends.
		if r := recover(); r != nil {
			s.logPanic(logger, "session", r, debug.Stack())
			refuse(sess, lineError)
		}
	}()

	turnAway := func(reason, line string, kv ...any) {
		s.turned.Add(1)
		s.logRefusal(logger, "session refused", client, reason, kv...)
		refuse(sess, line)
	}
	pty, winch, ok := sess.Pty()
	if !ok {
		turnAway(RefusedNoPTY, lineNoPTY)
		return
	}
	select {
	case <-s.stopping:
		turnAway(RefusedShuttingDown, lineShutdown)
		return
	default:
	}
	if err := s.lim.admitSession(client); err != nil {
		line := lineBusy
		if errors.Is(err, errClientSessions) {
			line = lineClientSessions
		}
		turnAway(refusalOf(err), line, prefixOf(err)...)
		return
	}
	defer s.lim.releaseSession(client)
	s.sessionsTotal.Add(1)
	s.obs.SessionStarted()
	// Every started session is reported ended, a panic included.
	ended, outcome := endPanic, ""
	defer func() { s.obs.SessionEnded(ended.String(), outcome) }()
	logger.Info("session start", "client", client)

	in := &inputLimit{r: sess, left: s.cfg.MaxInputBytes, free: s.cfg.InputAllowance, budget: s.input}
	width, height := clampWindow(pty.Window)
	opts := append(bm.MakeOptions(sess),
		tea.WithWindowSize(width, height),
		tea.WithInput(in),
		// A program's own signal handler would turn the server's SIGINT
		// into an immediate quit of every session, skipping the grace.
		tea.WithoutSignalHandler(),
		tea.WithFPS(s.cfg.FPS),
	)
	p := tea.NewProgram(s.cfg.NewModel(Session{Session: sess, Client: client, Logger: logger}), opts...)

	var reason atomic.Int32
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer func() {
			close(watched)
			// The SSH library's request loop blocks on a window change
			// until it is taken: drain them until that loop ends with the
			// channel, or a client that keeps resizing after the program
			// ended would keep the loop, and the session it holds, for
			// good. Nothing here can panic.
			for range winch {
			}
		}()
		defer func() {
			if r := recover(); r != nil {
				s.logPanic(logger, "watch", r, debug.Stack())
				reason.Store(int32(endPanic))
				p.Kill()
			}
		}()
		s.watch(sess.Context(), p, [2]int{width, height}, winch, done, &reason)
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
	outcome = s.logEnd(logger, start, end, conn.read.Load(), final, err)
	ended = end

	switch end {
	case endQuit, endDisconnect:
		return // the SSH layer sends exit status 0 (or nobody is listening)
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
}

// watch feeds window changes and shutdown notices to p until done is closed.
// size is the window p started with.
func (s *Server) watch(ctx ssh.Context, p *tea.Program, size [2]int, winch <-chan ssh.Window, done <-chan struct{}, reason *atomic.Int32) {
	// graceOver is watched only once the notice is out, so that a slow
	// watcher cannot skip the notice when both channels are closed.
	stopping, graceOver := s.stopping, (<-chan struct{})(nil)
	// The connection is cut at MaxTimeout; quit the program a little
	// earlier so that the user can be told why.
	limit := time.NewTimer(time.Until(connOf(ctx).start.Add(s.cfg.MaxTimeout - farewellTime)))
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

// logEnd logs the end of a session and returns the final model's outcome.
// bytesIn, what the connection sent so far (SSH framing included), helps
// tune MaxConnBytes.
func (s *Server) logEnd(logger *log.Logger, start time.Time, end endReason, bytesIn int64, final tea.Model, err error) (outcome string) {
	kv := []any{"duration", time.Since(start).Round(time.Millisecond), "end", end.String(), "bytes_in", bytesIn}
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
		logger.Error("session end", kv...)
		return outcome
	}
	logger.Info("session end", kv...)
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
