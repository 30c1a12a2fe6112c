// Package mail sends the one-time code by email.
//
// A Sender composes the message with github.com/jordan-wright/email (a text
// and an HTML part from embedded templates or the operator's own, see
// Config.TemplateDir; a code-free subject naming the application; a
// Message-ID on the From domain) and delivers it with its own small client on
// net/smtp: one deadline over the whole send, context cancel, STARTTLS
// required (or implicit TLS), certificates verified, AUTH PLAIN or LOGIN, a
// chosen EHLO name, and bounded retries of temporary failures. It never uses
// the library's Send* or Pool (no timeouts, silent cleartext fallback, data
// races).
//
// Failures are *SendError values whose text is for the operator's log; their
// AddressRejected and MaybeDelivered methods tell the otp package what to
// tell the user. With no SMTP server configured, package devserver provides
// a local one that keeps messages in an outbox folder.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"os"
	"strings"
	"time"
)

// Retry bounds how a send is repeated after a temporary failure.
type Retry struct {
	Attempts int           // connections per send, including the first
	Base     time.Duration // backoff before the 2nd attempt; doubles after
	Max      time.Duration // cap on one backoff
}

// DefaultRetry: three connections, about 0.5s and 1s apart.
var DefaultRetry = Retry{Attempts: 3, Base: 500 * time.Millisecond, Max: 4 * time.Second}

// backoff returns the pause before attempt n+1: exponential with jitter in
// [d/2, d) so that many senders failing together do not retry in step.
func (r Retry) backoff(n int) time.Duration {
	d := r.Base << (n - 1)
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// Sender delivers messages to one SMTP server. It is safe for concurrent use
// and implements otp.Sender. It keeps a few authenticated connections open
// between sends (see Config.MaxIdle); Close ends them.
type Sender struct {
	addr, host         string
	security           Security
	username, password string
	from               *mail.Address
	appName, subject   string
	templates          *templates
	helo               string
	tls                *tls.Config
	timeout            time.Duration
	retry              Retry
	pool               pool
}

// Timeout is the bound on one SendCode, retries included.
func (s *Sender) Timeout() time.Duration { return s.timeout }

// New checks cfg and returns a Sender for it. cfg must be Configured.
func New(cfg Config) (*Sender, error) {
	if !cfg.Configured() {
		return nil, errors.New("mail: no SMTP server configured")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	from := cfg.From
	if from == "" {
		from = cfg.Username
	}
	fa, err := ParseFrom(from)
	if err != nil {
		return nil, &FieldError{Field: "From", Err: err}
	}
	roots := cfg.RootCAs
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, &FieldError{Field: "CAFile", Err: err}
		}
		if roots == nil {
			if roots, err = x509.SystemCertPool(); err != nil {
				return nil, &FieldError{Field: "CAFile", Err: fmt.Errorf("system roots: %w", err)}
			}
		} else {
			roots = roots.Clone()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fieldError("CAFile", "%q holds no PEM certificate", cfg.CAFile)
		}
	}
	helo := cfg.HeloName
	if helo == "" {
		helo = fa.Address[strings.LastIndexByte(fa.Address, '@')+1:]
	}
	if strings.EqualFold(helo, "localhost") && !isLoopback(cfg.Host) {
		return nil, fieldError("HeloName", "the From domain is localhost, which real relays reject; set a name")
	}
	tpl := builtinTemplates
	if cfg.TemplateDir != "" {
		if tpl, err = loadTemplates(cfg.TemplateDir); err != nil {
			return nil, &FieldError{Field: "TemplateDir", Err: err}
		}
	}
	retry := cfg.Retry
	if retry.Attempts < 1 {
		retry = DefaultRetry
	}
	s := &Sender{
		addr:      cfg.Addr(),
		host:      cfg.Host,
		security:  cfg.security(),
		username:  cfg.Username,
		password:  stripAppPassword(cfg.Password),
		from:      fa,
		appName:   cfg.AppName,
		subject:   cfg.Subject,
		templates: tpl,
		helo:      helo,
		tls: &tls.Config{
			ServerName: cfg.Host,
			RootCAs:    roots, // nil: the system roots
			MinVersion: tls.VersionTLS12,
		},
		timeout: cfg.Timeout,
		retry:   retry,
	}
	s.pool.max, s.pool.timeout = cfg.MaxIdle, cfg.IdleTimeout
	if s.pool.max == 0 {
		s.pool.max = DefaultMaxIdle
	}
	if s.pool.timeout == 0 {
		s.pool.timeout = DefaultIdleTimeout
	}
	if s.appName == "" {
		s.appName = DefaultAppName
	}
	if s.subject == "" {
		s.subject = DefaultSubject(s.appName)
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	return s, nil
}

// From is the sender address in use, for the start-up log.
func (s *Sender) From() string { return s.from.String() }

// SendCode mails code to the bare address to, saying it expires at
// expiresAt. It implements otp.Sender. A failure is a *SendError.
func (s *Sender) SendCode(ctx context.Context, to, code string, expiresAt time.Time) error {
	now := time.Now()
	m, err := composeCode(s.templates, s.from, s.appName, s.subject, to, code, expiresAt, now)
	if err != nil {
		return &SendError{Stage: StageCompose, Err: err, to: to}
	}
	return s.deliver(ctx, m)
}

// Test sends one test message to the bare address to with the current
// configuration. The error, a *SendError, gives the stage and the server's
// reply for the operator (otplogin mail-test).
func (s *Sender) Test(ctx context.Context, to string) error {
	m, err := composeTest(s.from, s.appName, to, s.addr, time.Now())
	if err != nil {
		return &SendError{Stage: StageCompose, Err: err, to: to}
	}
	return s.deliver(ctx, m)
}

// deliver sends m, retrying temporary failures on fresh connections within
// one overall deadline.
func (s *Sender) deliver(ctx context.Context, m message) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		// A retry dials anew: whatever failed may have hit the pooled ones too.
		err := s.attempt(ctx, m, attempt == 1)
		if err == nil {
			return nil
		}
		se := stageOf(err)
		last := se.sendError(ctx, attempt, m.to)
		if attempt >= s.retry.Attempts || !retryable(se.stage, se.err) || expired(ctx) {
			return last
		}
		pause := s.retry.backoff(attempt)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= pause {
			return last // no time left for another attempt
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			last.Err = withCause(ctx, last.Err)
			return last
		case <-t.C:
		}
	}
}

// attempt delivers m over one connection, pooled (if allowed) or new.
func (s *Sender) attempt(ctx context.Context, m message, pooled bool) error {
	sess, stop, err := s.open(ctx, pooled)
	if err != nil {
		return err
	}
	if err := sess.transact(m); err != nil {
		stop()
		sess.close()
		return err
	}
	sess.sent++
	// A session goes back to the pool only if the cancel did not fire: that
	// would have left a deadline in the past on it.
	if !stop() || !s.pool.put(sess) {
		_ = sess.nc.SetDeadline(time.Now().Add(quitTimeout))
		sess.quit()
	}
	return nil
}

// Ping checks that a message could be sent now, without sending one: an
// idle connection kept for reuse answers RSET, or a new one is greeted,
// secured and authenticated, within Timeout. It is cheap enough for a
// readiness probe to call after a failed send, to learn when the relay is
// back; a probe that ran it all the time would keep a connection busy. A
// failure is a *SendError naming the stage.
func (s *Sender) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sess, stop, err := s.open(ctx, true)
	if err != nil {
		return stageOf(err).sendError(ctx, 1, "")
	}
	if !stop() || !s.pool.put(sess) {
		_ = sess.nc.SetDeadline(time.Now().Add(quitTimeout))
		sess.quit()
	}
	return nil
}

// Close ends the idle connections kept for reuse. Sends after Close still
// work but open a connection each time.
func (s *Sender) Close() error {
	s.pool.close()
	return nil
}
