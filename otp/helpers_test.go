package otp_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/fakeclock"
	"github.com/otplogin/otplogin/otp"
)

// newClock is a manual clock; tests move it instead of sleeping.
func newClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// message is one SendCode call.
type message struct {
	To, Code  string
	ExpiresAt time.Time
}

// recorder is a Sender that keeps every message and answers with err.
type recorder struct {
	mu   sync.Mutex
	msgs []message
	err  error
}

func (r *recorder) SendCode(_ context.Context, to, code string, expiresAt time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, message{to, code, expiresAt})
	return r.err
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) last(t *testing.T) message {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.msgs) == 0 {
		t.Fatal("nothing was sent")
	}
	return r.msgs[len(r.msgs)-1]
}

// Sender errors as the mail package classifies them. A real SMTP server
// could produce these, but the otp package must not depend on mail, so
// these stand in for its error types.
type (
	ambiguousErr struct{}
	rejectedErr  struct{}
)

func (ambiguousErr) Error() string        { return "connection lost after DATA for alice@example.com" }
func (ambiguousErr) MaybeDelivered() bool { return true }
func (rejectedErr) Error() string         { return "550 5.1.1 <alice@example.com>: no such user" }
func (rejectedErr) AddressRejected() bool { return true }
func (rejectedErr) MaybeDelivered() bool  { return false }

var errTransient = errors.New("dial tcp: connection refused")

type env struct {
	svc   *otp.Service
	clock *fakeclock.Clock
	send  *recorder
	store *otp.MemoryStore
}

// newEnv returns a Service over a memory store, a recorder and a manual
// clock; edit adjusts the Config first.
func newEnv(t *testing.T, edit func(*otp.Config)) *env {
	t.Helper()
	e := &env{clock: newClock(), send: &recorder{}, store: otp.NewMemoryStore()}
	cfg := otp.Config{Key: []byte("0123456789abcdef0123456789abcdef"), Now: e.clock.Now}
	if edit != nil {
		edit(&cfg)
	}
	svc, err := otp.New(cfg, e.store, e.send)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	e.svc = svc
	return e
}

// request asks for a code and returns the ticket and the code sent.
func (e *env) request(t *testing.T, addr string) (otp.Ticket, string) {
	t.Helper()
	tk, err := e.svc.Request(t.Context(), addr, "client")
	if err != nil {
		t.Fatalf("Request(%q): %v", addr, err)
	}
	if tk.AlreadySent {
		t.Fatalf("Request(%q): AlreadySent, want a new code", addr)
	}
	return tk, e.send.last(t).Code
}

// wrong returns a code of the same length that differs from code.
func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func wantLimit(t *testing.T, err error, kind otp.LimitKind, retry time.Time) {
	t.Helper()
	var le *otp.LimitError
	if !errors.As(err, &le) || le.Kind != kind {
		t.Fatalf("err = %v, want *LimitError %v", err, kind)
	}
	if !le.RetryAt.Equal(retry) {
		t.Fatalf("%v RetryAt = %v, want %v", kind, le.RetryAt, retry)
	}
}

func sameTicket(t *testing.T, got, want otp.Ticket) {
	t.Helper()
	if got.Address != want.Address || !got.SentAt.Equal(want.SentAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		!got.ResendAt.Equal(want.ResendAt) || got.AlreadySent != want.AlreadySent || got.MaybeSent != want.MaybeSent {
		t.Fatalf("ticket = %+v\nwant     %+v", got, want)
	}
}
