package load

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/otplogin/otplogin/mail/devserver"
)

// Command is `otplogin load`: it parses args, runs, prints the report on
// stdout (as JSON with -json) and the progress on stderr. It fails when the
// run cannot start or when any session failed.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("otplogin load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: otplogin load [flags]

Drive real SSH sessions through the login against an otplogin serve on this
host, then report latencies, throughput and the server's memory, CPU and
goroutines. Start the server with limits that let one client (127.0.0.1) in,
then point the load at the same outbox:

  outbox=$(mktemp -d)
  otplogin serve --outbox "$outbox" --debug-addr 127.0.0.1:6060 \
    --max-sessions 2000 --max-sessions-per-client 2000 --conn-rate 100000 --client-codes 100000 &
  otplogin load -outbox "$outbox" -debug-addr 127.0.0.1:6060 -sessions 1000 -concurrency 32

Flags:
`)
		fs.PrintDefaults()
	}
	var (
		cfg       Config
		outbox    string
		debugAddr string
		pid       int
		asJSON    bool
	)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:23234", "the server's SSH address; loopback only")
	fs.IntVar(&cfg.Sessions, "sessions", 100, fmt.Sprintf("sessions to run (1..%d)", MaxSessions))
	fs.IntVar(&cfg.Concurrency, "concurrency", 10, "sessions in flight at once; with -hold, how many connect at once")
	fs.DurationVar(&cfg.Timeout, "timeout", defaultTimeout, "bound on the whole run")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", defaultSessionTimeout, "bound on one login (or one idle session's first frame)")
	fs.DurationVar(&cfg.Hold, "hold", 0, "idle run: open every session to the email screen and hold them all this long")
	fs.DurationVar(&cfg.Settle, "settle", defaultSettle, "wait up to this long for the server to go quiet before the run (the goroutine baseline), and for its goroutines to return to baseline after it")
	fs.StringVar(&outbox, "outbox", devserver.DefaultOutbox(), "the dev mail server's outbox folder (the server's --outbox); a fresh one is faster")
	fs.StringVar(&debugAddr, "debug-addr", "", "the server's debug endpoint (its --debug-addr), for RSS, CPU, goroutines and sessions")
	fs.IntVar(&pid, "pid", 0, "the server's process id, to read RSS and CPU from /proc")
	fs.StringVar(&cfg.RunID, "run-id", "", "goes into every address, load-<run-id>-<i>@example.test (default random)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("load: unexpected argument %q", fs.Arg(0))
	}
	// Zero means "default" in a Config, but on the command line it is a typo.
	if cfg.Sessions < 1 || cfg.Concurrency < 1 {
		return fmt.Errorf("load: sessions must be 1..%d and concurrency at least 1", MaxSessions)
	}
	if cfg.Hold == 0 {
		cfg.Codes = NewOutbox(outbox)
	}
	switch {
	case debugAddr != "":
		if _, err := loopback(ctx, debugAddr); err != nil {
			return err
		}
		cfg.Stats = HTTPStats{URL: "http://" + debugAddr + "/stats", PID: pid}
	case pid != 0:
		cfg.Stats = Process{PID: pid}
	}
	cfg.Progress = stderr

	rep, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.Write(stdout)
	}
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	var problems []string
	if rep.Failed > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d sessions failed", rep.Failed, rep.Sessions))
	}
	if rep.Before.Goroutines >= 0 && !rep.Settled {
		problems = append(problems, fmt.Sprintf("server goroutines %d after the run, %d before", rep.After.Goroutines, rep.Before.Goroutines))
	}
	if len(problems) > 0 {
		return errors.New("load: " + strings.Join(problems, "; "))
	}
	return nil
}
