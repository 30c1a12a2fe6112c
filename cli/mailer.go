package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"charm.land/log/v2"
	"github.com/charmbracelet/x/term"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/otp"
)

// mailer is the mail side of the app: a Sender and, in dev mode, the
// embedded dev mail server it delivers to.
type mailer struct {
	sender *mail.Sender
	dev    *devserver.Server // nil when a real SMTP server is configured
}

var _ otp.Sender = (*mail.Sender)(nil)

// requestTimeout is how long the UI waits for a code request: a little
// longer than a send may take, so that the sender, not the UI, reports a
// slow server.
func (m *mailer) requestTimeout() time.Duration { return m.sender.Timeout() + 10*time.Second }

func (m *mailer) Close() error {
	var err error
	if m.sender != nil {
		err = m.sender.Close()
	}
	if m.dev != nil {
		err = errors.Join(err, m.dev.Close())
	}
	return err
}

// openMailer builds the Sender from c, starting the dev mail server when no
// SMTP server is configured. It prints nothing.
func openMailer(ctx context.Context, c *Config) (*mailer, error) {
	cfg := c.Mail
	m := &mailer{}
	if !cfg.Configured() {
		var err error
		if m.dev, err = devserver.Start(ctx, c.Outbox); err != nil {
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				// The outbox folder cannot be made or used.
				return nil, outbox.fail(err)
			}
			return nil, fmt.Errorf("starting the dev mail server: %w", err)
		}
		cfg = m.dev.Apply(cfg) // keeps the From and Subject the operator set
	}
	var err error
	if m.sender, err = mail.New(cfg); err != nil {
		m.Close()
		return nil, c.mailError(err)
	}
	return m, nil
}

// logTimeFormat is RFC 3339 with milliseconds and the zone, in every
// format: a log collector parses it as it is, and lines from hosts in
// different zones sort together.
const logTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// newLogger returns an operator logger writing to w in the given format:
// text, logfmt or json; "" is text on a terminal and logfmt otherwise.
//
// The styled text format is for eyes, and it costs many times what logfmt
// does per line: a file or a log collector gets the
// same fields in logfmt (docs/PERFORMANCE.md, F7).
func newLogger(w io.Writer, format string, level log.Level, terminal bool) *log.Logger {
	l := log.NewWithOptions(w, log.Options{ReportTimestamp: true, TimeFormat: logTimeFormat, Level: level})
	if format == "" && !terminal {
		format = "logfmt"
	}
	switch format {
	case "logfmt":
		l.SetFormatter(log.LogfmtFormatter)
	case "json":
		l.SetFormatter(log.JSONFormatter)
	}
	return l
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}
