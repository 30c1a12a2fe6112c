// Command otplogin proves that a person owns an email address: they type
// the address, a one-time code is mailed to it, they type the code, and
// otplogin says yes or no.
//
//	otplogin             the login in this terminal; prints the verified address
//	otplogin serve       the same login for anyone who runs ssh -p 23234 host
//	otplogin mail-test   send one test message with the current mail settings
//
// Every flag mirrors an OTPLOGIN_* environment variable; the flag wins.
// With no SMTP server configured, mail goes to a built-in dev mail server
// whose outbox only the local operator sees.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/otplogin/otplogin/load"
)

// Exit statuses: scripts rely on them (email=$(otplogin) || exit).
const (
	exitOK          = 0 // verified (or the subcommand succeeded)
	exitFailed      = 1 // cancelled, not verified, or the subcommand failed
	exitConfigError = 2 // a bad setting or flag; one line on stderr says which
)

const usage = `otplogin proves that a person owns an email address with a one-time code.

Usage:
  otplogin [flags]              log in here; prints the verified address on stdout
  otplogin serve [flags]        serve the login over SSH (ssh -p 23234 host)
  otplogin mail-test --to ADDR  send a test message with the current mail settings
  otplogin load [flags]         drive real SSH logins against a local serve (docs/PERFORMANCE.md)
  otplogin version              print the version

Run "otplogin COMMAND --help" for a command's flags. Every flag mirrors an
OTPLOGIN_* environment variable; the flag wins. With no SMTP server set, mail
goes to a built-in dev mail server and is saved in an outbox folder.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd, rest := "", args
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, rest = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "":
		if len(rest) > 0 && (rest[0] == "--version" || rest[0] == "-version") {
			fmt.Fprintln(stdout, version())
			return exitOK
		}
		return runLocal(ctx, rest, stdout, stderr, getenv)
	case "serve":
		err = runServe(ctx, rest, stderr, getenv)
	case "mail-test":
		err = runMailTest(ctx, rest, stdout, stderr, getenv)
	case "load":
		err = load.Command(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version())
		return exitOK
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "otplogin: unknown command %q\n\n%s", cmd, usage)
		return exitConfigError
	}
	return exitStatus(err, stderr)
}

// exitStatus prints err as one line and maps it to an exit status.
func exitStatus(err error, stderr io.Writer) int {
	var cfgErr configError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitConfigError
	case errors.As(err, &cfgErr):
		fmt.Fprintln(stderr, "otplogin:", err)
		return exitConfigError
	default:
		fmt.Fprintln(stderr, "otplogin:", err)
		return exitFailed
	}
}

// version is the module version when built with go install, else the VCS
// revision go build stamped in.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "otplogin (unknown version)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && (v == "" || v == "(devel)") {
			v = s.Value
			if len(v) > 12 {
				v = v[:12]
			}
		}
	}
	return "otplogin " + v + " " + bi.GoVersion
}
