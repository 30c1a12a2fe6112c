package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"github.com/charmbracelet/x/term"

	"github.com/otplogin/otplogin/internal/logwriter"
	"github.com/otplogin/otplogin/internal/mask"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/ui"
)

// runLocal runs the login in this terminal. The UI draws on the terminal,
// never on stdout: stdout gets only the verified address, so that
// email=$(otplogin) works in scripts.
func runLocal(ctx context.Context, c *Config, stdio IO) error {
	addr, err := localLogin(ctx, c, stdio)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdio.Stdout, addr)
	return err
}

// localLogin runs the UI and returns the verified address; errNotVerified
// when the user left without verifying, errInterrupted on Ctrl+C.
func localLogin(ctx context.Context, c *Config, stdio IO) (string, error) {
	m, err := openMailer(ctx, c)
	if err != nil {
		return "", err
	}
	defer m.Close()

	logger, logPath, closeLog, err := localLogger(c, m)
	if err != nil {
		return "", err
	}
	defer closeLog()

	svc, err := openService(ctx, c, m, logger, nil)
	if err != nil {
		return "", err
	}
	defer svc.Close()

	in, out, closeTerm, err := terminal(stdio.Stdout)
	if err != nil {
		return "", err
	}
	defer closeTerm()

	if m.dev != nil {
		logger.Warn("DEV MODE: mail is not delivered; it is saved in the outbox", "outbox", m.dev.Outbox())
	}
	opts := ui.Options{Service: svc, Client: "local", Logger: logger, RequestTimeout: m.requestTimeout(), LogFile: logPath, AppName: c.Mail.AppName}
	if m.dev != nil {
		opts.DevOutbox = m.dev.Outbox()
	}
	start := time.Now()
	// The keys of serve's line for the end of a session.
	logEnd := func(end, outcome, addr string) {
		kv := []any{"client", "local", "duration", time.Since(start).Round(time.Millisecond), "end", end, "outcome", outcome}
		if addr != "" {
			kv = append(kv, "addr", mask.Address(addr))
		}
		logger.Info("session end", kv...)
	}
	var final outcome
	if c.Accessible {
		// Line prompts in the terminal's own cooked mode: Ctrl+C is the
		// terminal's SIGINT, which cancels ctx.
		final = ui.RunAccessible(ctx, opts, ui.LineIO{In: in, Out: out})
		if ctx.Err() != nil {
			logEnd("interrupted", "interrupted", "")
			return "", errInterrupted
		}
	} else {
		// Main's handler alone takes SIGINT and SIGTERM, and cancels ctx
		// with the signal as the cause, which ends the program and sets
		// the exit status. With bubbletea's own handler too, the program
		// could quit on the signal before ctx said which it was: exit 1.
		fm, err := tea.NewProgram(ui.New(opts), tea.WithoutSignalHandler(),
			tea.WithContext(ctx), tea.WithInput(in), tea.WithOutput(out)).Run()
		switch {
		case errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil:
			logEnd("interrupted", "interrupted", "")
			return "", errInterrupted
		case err != nil && !errors.Is(err, tea.ErrProgramKilled):
			logEnd("error", "", "")
			return "", fmt.Errorf("terminal: %w", err)
		}
		var ok bool
		if final, ok = fm.(*ui.Model); !ok {
			logEnd("error", "", "")
			return "", errNotVerified
		}
	}
	addr, verified := final.Verified()
	if !verified {
		addr = ""
	}
	logEnd("quit", final.Outcome(), addr)
	switch {
	case verified:
		return addr, nil
	case final.Outcome() == "interrupted": // Ctrl+C; see ui.Model.Outcome
		return "", errInterrupted
	}
	return "", errNotVerified
}

// outcome is how a login ended, in the screens or in accessible mode.
type outcome interface {
	Verified() (address string, ok bool)
	Outcome() string
}

// terminal is the terminal for the UI: stdin and stdout when both are one,
// else the controlling terminal, so that the UI never draws on a stdout
// that is a pipe.
func terminal(stdout io.Writer) (in, out *os.File, closeTerm func(), err error) {
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(f.Fd()) && term.IsTerminal(os.Stdin.Fd()) {
		return os.Stdin, f, func() {}, nil
	}
	in, out, err = tea.OpenTTY()
	if err != nil {
		return nil, nil, nil, configError{errors.New("otplogin needs a terminal to ask for the address and code (no /dev/tty)")}
	}
	return in, out, func() { in.Close(); out.Close() }, nil
}

// localLogger writes the operator log to a file, since the terminal belongs
// to the UI.
func localLogger(c *Config, m *mailer) (logger *log.Logger, path string, closeLog func(), err error) {
	path = c.LogFile
	if path == "" {
		// Next to the outbox: in the user's own cache folder by default,
		// never a shared one such as /tmp.
		outbox := devserver.DefaultOutbox()
		if m.dev != nil {
			outbox = m.dev.Outbox()
		}
		path = filepath.Join(filepath.Dir(outbox), "otplogin.log")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", nil, logFile.fail(err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|oNoFollow, 0o600)
	if err != nil {
		return nil, "", nil, logFile.fail(err)
	}
	if fi, err := f.Stat(); err != nil || ownedByOther(fi) {
		f.Close()
		return nil, "", nil, logFile.fail(fmt.Errorf("%s belongs to another user, who could read the log", path))
	}
	out := logwriter.New(f, 256) // the UI logs from Update, which must not wait on a disk
	logger = newLogger(out, "logfmt", c.LogLevel, false)
	return logger, path, func() { out.Close(); f.Close() }, nil
}

var _ ui.Service = (*codeService)(nil)
