package serve

import (
	"errors"

	"charm.land/log/v2"
)

// Observer is told what the server does, for metrics (the otplogin binary
// counts these in Prometheus). Its methods run on the goroutines of
// connections and sessions: they must be cheap and must not block. Every
// word they get comes from a fixed set, so each can be a metric label.
type Observer interface {
	// Refused: a connection (before its handshake) or a session was turned
	// away, for one of the Refused* reasons.
	Refused(reason string)
	// SessionStarted: a session passed the caps and its program starts.
	SessionStarted()
	// SessionEnded: a started session's program ended. end says how (quit,
	// disconnected, shutdown, input_limit, input_rate, time_limit, error or
	// panic); outcome is what the final model's Outcome said, "" if it has
	// no Outcome method.
	SessionEnded(end, outcome string)
	// Panicked: a panic was recovered; it ended one connection.
	Panicked()
}

// Why a connection or a session was turned away: Observer.Refused's words,
// and the limit= (or reason=) of the log line.
const (
	RefusedConnRate       = "conn_rate"       // the client's connection rate (or its IPv6 prefix's)
	RefusedClientConns    = "client_conns"    // the client's live connections
	RefusedConns          = "conns"           // the server's live connections
	RefusedClientSessions = "client_sessions" // the client's live sessions
	RefusedSessions       = "sessions"        // the server's live sessions
	RefusedEnv            = "env_cap"         // too many environment variables
	RefusedNoPTY          = "no_pty"          // no terminal asked for
	RefusedShuttingDown   = "shutting_down"   // the server is stopping
)

// refusalOf is the Refused* word for a limiter's error.
func refusalOf(err error) string {
	for _, r := range [...]struct {
		err  error
		word string
	}{
		{errRate, RefusedConnRate},
		{errClientConns, RefusedClientConns},
		{errConns, RefusedConns},
		{errClientSessions, RefusedClientSessions},
		{errSessions, RefusedSessions},
	} {
		if errors.Is(err, r.err) {
			return r.word
		}
	}
	return "other"
}

type noObserver struct{}

func (noObserver) Refused(string)              {}
func (noObserver) SessionStarted()             {}
func (noObserver) SessionEnded(string, string) {}
func (noObserver) Panicked()                   {}

// logRefusal counts a refusal and logs it at info, with the client and the
// limit (reason=, for the refusals that are not a limit's), but only a few
// lines a second for each reason: a flood of refused connections must not
// flood the log. The lines held back are counted in one line a second
// later (see lograte). kv are more keys for the line.
func (s *sessionGate) logRefusal(logger *log.Logger, msg, client, reason string, kv ...any) {
	s.obs.Refused(reason)
	if !s.refusals.Allow(reason) {
		return
	}
	logger.Info(msg, append([]any{"client", client, reasonKey(reason), reason}, kv...)...)
}

// reasonKey is the log's key for a refusal's reason: limit= for a limit's,
// reason= for the others.
func reasonKey(reason string) string {
	if reason == RefusedNoPTY || reason == RefusedShuttingDown {
		return "reason"
	}
	return "limit"
}
