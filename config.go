package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"charm.land/log/v2"
	"github.com/charmbracelet/x/term"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/otp"
)

// A setting is one configuration value: a flag and the OTPLOGIN_*
// environment variable it mirrors. The flag wins when both are given.
type setting struct {
	flag, env, usage string
}

// Settings every subcommand that sends mail understands.
var mailSettings = []setting{
	{"smtp-url", mail.EnvURL, "SMTP server: smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465; empty: built-in dev mail server; a password here shows in ps, so prefer the environment variable"},
	{"from", mail.EnvFrom, `sender, "Name <addr>" or addr`},
	{"outbox", "OTPLOGIN_OUTBOX", "folder where the dev mail server keeps messages (default: " + devserver.DefaultOutbox() + ")"},
}

// Settings of the code service.
var serviceSettings = []setting{
	{"redis-url", "OTPLOGIN_REDIS_URL", "share codes and limits through Redis: redis://[user:pass@]host:port/db or rediss://; needs OTPLOGIN_SECRET; a password here shows in ps, so prefer the environment variable"},
}

// settings holds the values of one subcommand's flags laid over the
// environment.
type settings struct {
	fs      *flag.FlagSet
	getenv  func(string) string
	values  map[string]*string // by env name
	envOf   map[string]string  // flag name -> env name
	flagged map[string]string  // env name -> flag name, for flags given on the command line
}

func newSettings(name string, getenv func(string) string, groups ...[]setting) *settings {
	s := &settings{
		fs:      flag.NewFlagSet(name, flag.ContinueOnError),
		getenv:  getenv,
		values:  map[string]*string{},
		envOf:   map[string]string{},
		flagged: map[string]string{},
	}
	for _, g := range groups {
		for _, st := range g {
			s.values[st.env] = s.fs.String(st.flag, "", st.usage+" ("+st.env+")")
			s.envOf[st.flag] = st.env
		}
	}
	return s
}

// parse parses args and records which settings came from flags.
func (s *settings) parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage // the flag package has printed the error and usage
	}
	if s.fs.NArg() > 0 {
		return configError{fmt.Errorf("unexpected argument %q", s.fs.Arg(0))}
	}
	s.fs.Visit(func(f *flag.Flag) {
		if env, ok := s.envOf[f.Name]; ok {
			s.flagged[env] = f.Name
		}
	})
	return nil
}

// get returns the setting named by its environment variable: the flag if it
// was given, else the environment.
func (s *settings) get(env string) string {
	if _, ok := s.flagged[env]; ok {
		return *s.values[env]
	}
	return s.getenv(env)
}

// label names the setting env as the operator gave it: "--flag (ENV)" when
// it came from a flag, else ENV.
func (s *settings) label(env string) string {
	if f, ok := s.flagged[env]; ok {
		return "--" + f + " (" + env + ")"
	}
	return env
}

// explain makes err a configError and, when it names an environment
// variable whose value came from a flag, names the flag too.
func (s *settings) explain(err error) error {
	msg := err.Error()
	for env := range s.flagged {
		if rest, ok := strings.CutPrefix(msg, env+":"); ok {
			return configError{fmt.Errorf("%s:%s", s.label(env), rest)}
		}
	}
	var ce configError
	if errors.As(err, &ce) {
		return err
	}
	return configError{err}
}

// errUsage is a bad command line whose message is already printed.
var errUsage = errors.New("bad usage")

// configError is a bad setting: exit status 2 with one line.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// mailer is the mail side of the app: a Sender and, in dev mode, the
// embedded dev mail server it delivers to.
type mailer struct {
	sender *mail.Sender
	dev    *devserver.Server // nil when a real SMTP server is configured
}

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

// openMailer builds the Sender from the settings, starting the dev mail
// server when no SMTP server is configured.
func openMailer(ctx context.Context, s *settings) (*mailer, error) {
	get := s.get
	if _, ok := s.flagged[mail.EnvURL]; ok {
		// --smtp-url names the whole server; the split variables from the
		// environment must not conflict with it.
		get = func(env string) string {
			switch env {
			case mail.EnvHost, mail.EnvPort, mail.EnvUsername, mail.EnvPassword, mail.EnvSecurity:
				return ""
			}
			return s.get(env)
		}
	}
	cfg, err := mail.ConfigFromEnv(get)
	if err != nil {
		return nil, s.explain(err)
	}
	m := &mailer{}
	if !cfg.Configured() {
		outbox := s.get("OTPLOGIN_OUTBOX")
		if m.dev, err = devserver.Start(ctx, outbox); err != nil {
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				// The outbox folder cannot be made or used.
				return nil, s.explain(fmt.Errorf("OTPLOGIN_OUTBOX: %w", err))
			}
			return nil, fmt.Errorf("starting the dev mail server: %w", err)
		}
		cfg = m.dev.Apply(cfg) // keeps the From and Subject the operator set
	}
	if m.sender, err = mail.New(cfg); err != nil {
		m.Close()
		return nil, s.explain(err)
	}
	return m, nil
}

// secretKey reads OTPLOGIN_SECRET: hex or any string of at least 32 bytes.
// Empty means a random per-process key, which is only right without Redis.
func secretKey(s *settings, required bool) ([]byte, error) {
	v := s.get("OTPLOGIN_SECRET")
	if v == "" {
		if required {
			return nil, configError{errors.New("OTPLOGIN_SECRET: required when OTPLOGIN_REDIS_URL is set (replicas must share it); e.g. OTPLOGIN_SECRET=$(openssl rand -hex 32)")}
		}
		return nil, nil
	}
	if b, err := hex.DecodeString(v); err == nil && len(b) >= 32 {
		return b, nil
	}
	if len(v) < 32 {
		return nil, configError{errors.New("OTPLOGIN_SECRET: must be at least 32 bytes (e.g. 64 hex digits from openssl rand -hex 32)")}
	}
	return []byte(v), nil
}

// newLogger returns an operator logger writing to w in the given format:
// text, logfmt or json; "" is text on a terminal and logfmt otherwise.
//
// The styled text format is for eyes, and it is costly: about 126 µs a line
// against 8 µs for logfmt and 11 µs for JSON (charm.land/log v2.0.1), which
// made logging 6% of an SSH server's CPU per login. A file or a log
// collector gets the same fields in logfmt.
func newLogger(w io.Writer, format string, terminal bool) (*log.Logger, error) {
	l := log.NewWithOptions(w, log.Options{ReportTimestamp: true, Level: log.InfoLevel})
	if format == "" && !terminal {
		format = "logfmt"
	}
	switch format {
	case "", "text":
	case "logfmt":
		l.SetFormatter(log.LogfmtFormatter)
	case "json":
		l.SetFormatter(log.JSONFormatter)
	default:
		return nil, configError{fmt.Errorf("OTPLOGIN_LOG_FORMAT: %q is not text, logfmt or json", format)}
	}
	return l, nil
}

var _ otp.Sender = (*mail.Sender)(nil)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}
