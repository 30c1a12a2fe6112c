// Package cli is otplogin's command line: the commands (the login in this
// terminal, serve, mail-test, load, version) on cobra with fang's help,
// one table of settings read from flags and OTPLOGIN_* variables
// (table.go), and the exit statuses scripts rely on. It is the only
// package that reads the environment or knows the variables' names; the
// packages that do the work take typed configurations.
package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/otplogin/otplogin/internal/buildinfo"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"charm.land/fang/v2"
)

// Exit statuses, the same for every command: scripts rely on them
// (email=$(otplogin) || exit).
const (
	ExitOK          = 0   // verified, or the command succeeded
	ExitFailed      = 1   // not verified, cancelled with Esc, or the command failed
	ExitUsage       = 2   // a bad setting or flag; one line on stderr says which
	ExitInterrupted = 130 // Ctrl+C or SIGINT (128 + 2, as shells report it)
	ExitTerminated  = 143 // SIGTERM (128 + 15)
)

// IO is where a command writes and how it reads the environment.
type IO struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Main runs the command line args (without the program name) as the
// process otplogin and returns its exit status. SIGINT and SIGTERM cancel
// the command's context; a second one ends the process at once.
func Main(args []string) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	go func() {
		select {
		case sig := <-sigc:
			signal.Stop(sigc) // the next one takes its default action
			if s, ok := sig.(syscall.Signal); ok {
				cancel(signalled{s})
			}
		case <-ctx.Done():
		}
	}()
	return Run(ctx, args, IO{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
}

// signalled is the cause of a context cancelled by a signal.
type signalled struct{ sig syscall.Signal }

func (s signalled) Error() string { return s.sig.String() }

// Run runs the command line args and returns the exit status. A context
// cancelled with a signalled cause (see Main) stops the command and makes
// the status 128 + the signal's number.
func Run(ctx context.Context, args []string, stdio IO) int {
	r := &runner{stdio: stdio}
	root := r.newRoot()
	root.SetArgs(append([]string{}, args...)) // never nil: cobra would read os.Args
	root.SetOut(stdio.Stdout)
	root.SetErr(stdio.Stderr)
	err := fang.Execute(ctx, root,
		fang.WithVersion(buildinfo.String()),
		fang.WithoutManpage(), // man below: one with the environment and exit statuses
		fang.WithErrorHandler(func(w io.Writer, _ fang.Styles, err error) { report(ctx, w, err) }),
	)
	if sig, ok := signalOf(ctx); ok {
		return 128 + int(sig)
	}
	if err != nil {
		return statusOf(err)
	}
	return r.status
}

func isSignalled(ctx context.Context) bool {
	_, ok := signalOf(ctx)
	return ok
}

func signalOf(ctx context.Context) (syscall.Signal, bool) {
	var s signalled
	if errors.As(context.Cause(ctx), &s) {
		return s.sig, true
	}
	return 0, false
}

// statusOf maps a command's error to its exit status.
func statusOf(err error) int {
	var (
		status exitStatus
		se     *SettingError
		ue     usageError
		ce     configError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &se), errors.As(err, &ue), errors.As(err, &ce):
		return ExitUsage
	}
	return ExitFailed
}

// report prints err on stderr as one line, unless its exit status says it
// all: a user who cancelled or interrupted, or a signal, is told nothing.
func report(ctx context.Context, w io.Writer, err error) {
	var status exitStatus
	if _, ok := signalOf(ctx); ok || errors.As(err, &status) {
		return
	}
	// Errors are one line already; this only keeps a stray newline in a
	// server's reply from breaking the one-line contract.
	msg := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(err.Error())
	fmt.Fprintln(w, "otplogin: "+msg)
}

// exitStatus is a result whose exit status says everything: nothing is
// printed for it.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

var (
	errNotVerified = exitStatus(ExitFailed)      // the user left, or the code did not verify
	errInterrupted = exitStatus(ExitInterrupted) // Ctrl+C
)

// usageError is a bad command line: an unknown flag or command, a flag
// without its value, an argument where none is taken.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// configError is a configuration that cannot work and that no one setting
// is to blame for.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }
