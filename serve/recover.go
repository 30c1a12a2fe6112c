package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"charm.land/log/v2"

	"github.com/otplogin/otplogin/internal/mask"
)

// A panic on any goroutine that exists for one connection ends that
// connection's session, never the process. Each such goroutine of this
// package defers a recover that calls logPanic; bubbletea recovers its own
// goroutines and makes Program.Run return an error wrapping
// tea.ErrProgramPanic, which handleSession logs the same way; charm.land/ssh
// recovers its own (the handshake, global requests, channel dispatch) and
// logs through slog, which LibraryLog brings into the same log and count.

// logPanic counts a recovered panic for Stats.Panics and logs it as one line
// with its stack. logger carries the connection's keys; where names the
// goroutine. Addresses in the panic's text are masked: a model may panic
// with what the user typed.
func (s *sessionGate) logPanic(logger *log.Logger, where string, value any, stack []byte) {
	s.panics.Add(1)
	s.obs.Panicked()
	kv := []any{"where", where, "panic", maskAddresses(fmt.Sprint(value))}
	if len(stack) > 0 {
		kv = append(kv, "stack", string(stack))
	}
	logger.Error("panic", kv...)
}

// panicStack returns the stack that a recovered program panic carries, if
// its error exposes one.
func panicStack(err error) []byte {
	var st interface{ Stack() []byte }
	if errors.As(err, &st) {
		return st.Stack()
	}
	return nil
}

// addressLike is anything with an @ between non-space characters: enough to
// find an address in a panic's text, which is not parsed further.
var addressLike = regexp.MustCompile(`[^\s"'<>()\[\],;:]+@[^\s"'<>()\[\],;:]+`)

// maskAddresses masks every address-like word in text.
func maskAddresses(text string) string {
	if !strings.Contains(text, "@") {
		return text
	}
	return addressLike.ReplaceAllStringFunc(text, mask.Address)
}

// LibraryLog returns a slog.Handler for the SSH library's own log lines.
// charm.land/ssh logs through slog's default logger, among them the panics
// it recovers on its own goroutines (the handshake, global requests, channel
// dispatch); this handler writes its lines to Config.Logger and counts those
// panics in Stats.Panics. A program installs it once, with
// slog.SetDefault(slog.New(srv.LibraryLog())); slog's default is the
// process's, which is why New does not.
func (s *Server) LibraryLog() slog.Handler { return libraryLog{s: s, next: s.log} }

type libraryLog struct {
	s    *Server
	next slog.Handler
}

// libraryPanicPrefix starts every message charm.land/ssh logs when it
// recovers a panic ("ssh: panic serving connection", ...).
const libraryPanicPrefix = "ssh: panic"

func (h libraryLog) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelError || h.next.Enabled(ctx, level)
}

func (h libraryLog) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, libraryPanicPrefix) {
		h.s.panics.Add(1)
		h.s.obs.Panicked()
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h libraryLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return libraryLog{s: h.s, next: h.next.WithAttrs(attrs)}
}

func (h libraryLog) WithGroup(name string) slog.Handler {
	return libraryLog{s: h.s, next: h.next.WithGroup(name)}
}
