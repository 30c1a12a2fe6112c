package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/muesli/mango"
	mcobra "github.com/muesli/mango-cobra"
	"github.com/muesli/roff"
	"github.com/spf13/cobra"
)

// runner is one run of the command line.
type runner struct {
	stdio IO
	// status is the exit status of a command that ended without an error
	// to print.
	status int
}

// command is the RunE of a command: it reads the settings command takes
// and hands them to do.
func (r *runner) command(command commands, do func(context.Context, *Config, IO) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		c, err := readConfig(cmd.Flags(), r.stdio.Getenv, command)
		if err == nil {
			err = do(cmd.Context(), c, r.stdio)
		}
		// A status that says it all, and a signal, skip fang's error
		// handler: before calling it, fang asks a terminal on stdout for its
		// background colour, which is wasted here and waits on a terminal
		// that does not answer.
		var status exitStatus
		switch {
		case errors.As(err, &status):
			r.status = int(status)
			return nil
		case err != nil && isSignalled(cmd.Context()):
			return nil
		}
		return err
	}
}

// newRoot builds the command tree. Each command takes its flags from the
// table of settings and hands a Config to the code that does the work.
func (r *runner) newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "otplogin",
		Short: "Prove that a person owns an email address, with a one-time code",
		Long: `otplogin proves that a person owns an email address: they type the address,
a one-time code is mailed to it, they type the code, and otplogin says yes or no.

Run with no command, it asks in this terminal and prints the verified address on
stdout, and nothing else, so that email=$(otplogin) works in scripts.

Every flag has an OTPLOGIN_* variable; the flag wins. With no SMTP server set,
mail goes to a built-in dev mail server and is saved in an outbox folder.`,
		Example: `
# log in here; the verified address is the only thing on stdout
email=$(otplogin)
# with a real SMTP server
OTPLOGIN_SMTP_URL=smtps://user:pass@smtp.example.com:465 otplogin
# the same login for anyone who runs ssh -p 23234 host
otplogin serve --listen :23234
`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			err := fmt.Errorf("unknown command %q", args[0])
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				err = fmt.Errorf("unknown command %q (did you mean %s?)", args[0], strings.Join(s, " or "))
			}
			return usageError{err}
		},
		RunE: r.command(cmdLocal, runLocal),
	}
	addFlags(root.Flags(), table, cmdLocal)
	root.Long += envOnly(cmdLocal)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		r.newServeCommand(),
		r.newMailTestCommand(),
		r.newLoadCommand(),
		r.newOutboxCommand(),
		r.newHealthCommand(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Long:  "Print otplogin's version, as --version does.",
			Example: `
otplogin version
otplogin --version
`,
			Args: noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "otplogin version "+cmd.Root().Version)
				return err
			},
		},
		newManCommand(),
	)
	return root
}

func (r *runner) newServeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the login over SSH, for anyone who runs ssh -p 23234 host",
		Long: `Serve the same login over SSH: any user name, no password, the one-time code
is the login. Built to be exposed: connection rates and session caps per client
address, a global session cap, timeouts, bounded input, and a graceful stop on
SIGINT or SIGTERM that lets live sessions finish.

The operator's log goes to stderr, with addresses masked.`,
		Example: `
# try it here, then run ssh -p 23234 localhost in another terminal
otplogin serve
# let other hosts in, with a real SMTP server
OTPLOGIN_SMTP_URL=smtps://user:pass@smtp.example.com:465 otplogin serve --listen :23234
# a replica sharing codes through Redis
OTPLOGIN_SECRET=$(openssl rand -hex 32) otplogin serve --redis-url redis://redis.internal:6379/0
`,
		Args: noArgs,
		RunE: r.command(cmdServe, runServe),
	}
	addFlags(cmd.Flags(), table, cmdServe)
	cmd.Long += envOnly(cmdServe)
	return cmd
}

func (r *runner) newMailTestCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mail-test --to ADDRESS",
		Short: "Send one test message with the current mail settings",
		Long: `Send one test message with the current mail settings and say exactly what
happened: for the operator setting up SMTP. The reason for a failure is the
server's own reply.`,
		Example: `
otplogin mail-test --to you@example.com
OTPLOGIN_SMTP_URL='smtp://you%40gmail.com:app-password@smtp.gmail.com:587' otplogin mail-test --to you@gmail.com
`,
		Args: noArgs,
		RunE: r.command(cmdMailTest, runMailTest),
	}
	addFlags(cmd.Flags(), commandFlags, cmdMailTest)
	addFlags(cmd.Flags(), table, cmdMailTest)
	cmd.Long += envOnly(cmdMailTest)
	return cmd
}

func (r *runner) newOutboxCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "outbox ADDRESS",
		Short: "Print the newest code the dev mail server saved for an address",
		Long: `Print the code of the newest message the dev mail server saved in its outbox
for ADDRESS (any case), and nothing else, so that code=$(otplogin outbox ...)
works. Exit status 1 when there is none; with --wait, wait for it instead.`,
		Example: `
# in one terminal
otplogin
# in another, once you asked for a code
otplogin outbox --wait you@example.com
`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("outbox takes one address, e.g. otplogin outbox you@example.com")}
			}
			return nil
		},
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return r.command(cmdOutbox, func(ctx context.Context, c *Config, stdio IO) error {
			return runOutbox(ctx, c, args[0], stdio)
		})(cmd, args)
	}
	addFlags(cmd.Flags(), commandFlags, cmdOutbox)
	addFlags(cmd.Flags(), table, cmdOutbox)
	return cmd
}

func (r *runner) newLoadCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Drive real SSH logins against a local serve and report what they cost",
		Long: `Drive real SSH sessions through the login against an otplogin serve on this
host, then report latencies, throughput and the server's memory, CPU and
goroutines (docs/PERFORMANCE.md). Start the server with limits that let one
client (127.0.0.1) in, and point the load at the same outbox. The report goes to
stdout, the progress to stderr.`,
		Example: `
outbox=$(mktemp -d)
otplogin serve --outbox "$outbox" --debug-addr 127.0.0.1:6060 --max-sessions 2000 \
  --max-sessions-per-client 2000 --conn-rate 100000 --client-codes 100000 --codes-per-second 100000 --codes-per-hour 100000000 &
otplogin load --outbox "$outbox" --debug-addr 127.0.0.1:6060 --sessions 1000 --concurrency 32
`,
		Args: noArgs,
		RunE: r.command(cmdLoad, runLoad),
	}
	addFlags(cmd.Flags(), commandFlags, cmdLoad)
	return cmd
}

func (r *runner) newHealthCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Ask a serve on this host whether it is healthy, for container health checks",
		Long: `Ask the operator endpoint of an otplogin serve on this host (--metrics-addr,
the same setting serve listens on) whether the server runs (/healthz) or, with
--ready, whether it can log people in now (/readyz: the code store and the mail
relay answer). Exit status 0 if it says yes, 1 with one line saying why if not.`,
		Example: `
# in a Containerfile, next to OTPLOGIN_METRICS_ADDR=127.0.0.1:23235
HEALTHCHECK CMD ["otplogin", "health"]
# by hand
otplogin health --metrics-addr 127.0.0.1:23235 --ready
`,
		Args: noArgs,
		RunE: r.command(cmdHealth, runHealth),
	}
	addFlags(cmd.Flags(), commandFlags, cmdHealth)
	addFlags(cmd.Flags(), table, cmdHealth)
	return cmd
}

// newManCommand prints the man page: fang's, which has no room for the
// environment and the exit statuses, and writes to os.Stdout whatever the
// command's output is.
func newManCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "man",
		Short: "Print the man page",
		Long:  "Print otplogin's man page, in roff.",
		Example: `
# read it
otplogin man | man -l -
# install it
otplogin man > /usr/local/share/man/man1/otplogin.1
`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root := cmd.Root()
			// roff makes a paragraph of each line: join the lines of each
			// paragraph of the help. The variables have their own section.
			page := mango.NewManPage(1, root.Name(), root.Short).WithLongDescription(reflow(strings.TrimSuffix(root.Long, envOnly(cmdLocal))))
			if err := mcobra.AddCommand(page, root); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			page = page.WithSection("Environment", environmentText()).
				WithSection("Exit status", exitStatusText)
			_, err := fmt.Fprint(cmd.OutOrStdout(), page.Build(roff.NewDocument()))
			return err
		},
	}
}

// envOnly is a paragraph for the help of command on the settings it takes
// only from the environment, which have no flag to list them.
func envOnly(command commands) string {
	var b strings.Builder
	for _, s := range table {
		if s.For&command == 0 || s.Flag != "" {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("\n\nOnly in the environment, so that they never show in ps:")
		}
		fmt.Fprintf(&b, "\n  %s: %s", s.Env, s.Help)
	}
	return b.String()
}

// reflow joins the lines of each paragraph of s, one paragraph a line.
func reflow(s string) string {
	paras := strings.Split(s, "\n\n")
	for i, p := range paras {
		paras[i] = strings.Join(strings.Fields(p), " ")
	}
	return strings.Join(paras, "\n")
}

// environmentText lists every variable for the man page.
func environmentText() string {
	var b strings.Builder
	for _, s := range table {
		fmt.Fprintf(&b, "%s: %s", s.Env, s.Help)
		if w := s.want(); w != "" {
			fmt.Fprintf(&b, ": %s", w)
		}
		if d := s.defaultText(); d != "" {
			fmt.Fprintf(&b, " (default: %s)", d)
		}
		if s.Flag != "" {
			fmt.Fprintf(&b, "; the flag --%s wins", s.Flag)
		}
		b.WriteString(".\n")
	}
	return b.String()
}

const exitStatusText = `0: verified, or the command succeeded. 1: not verified, cancelled with Esc, or the command failed. 2: a bad setting or flag; one line on stderr names it. 130: interrupted with Ctrl+C or SIGINT. 143: stopped by SIGTERM.`

// noArgs refuses arguments: every command takes only flags.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}
