package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/otplogin/otplogin/mail/devserver"
)

// Options are what `otplogin load` takes from its flags: the run's Config
// (its Codes, Stats and Progress are set by Command) and where to read
// codes and the server's figures.
type Options struct {
	Config
	// Outbox is the dev mail server's outbox, where a login run reads
	// codes ("": devserver.DefaultOutbox()).
	Outbox string
	// DebugAddr is the server's debug endpoint, for RSS, CPU, goroutines
	// and sessions; "" reads them from /proc with PID, or not at all.
	DebugAddr string
	// PID is the server's process id; 0 for none.
	PID int
	// JSON prints the report as JSON instead of text.
	JSON bool
}

// DefaultOptions are the command's defaults.
func DefaultOptions() Options {
	return Options{Config: Config{
		Addr:           "127.0.0.1:23234",
		Sessions:       100,
		Concurrency:    10,
		Timeout:        defaultTimeout,
		SessionTimeout: defaultSessionTimeout,
		Settle:         defaultSettle,
	}}
}

// Command is `otplogin load`: it runs, prints the report on stdout (as
// JSON with o.JSON) and the progress on stderr. It fails when the run
// cannot start or when any session failed.
func Command(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	cfg := o.Config
	// Zero means "default" in a Config, but on the command line it is a typo.
	if cfg.Sessions < 1 || cfg.Concurrency < 1 {
		return fmt.Errorf("load: sessions must be 1..%d and concurrency at least 1", MaxSessions)
	}
	if cfg.Hold == 0 {
		outbox := o.Outbox
		if outbox == "" {
			outbox = devserver.DefaultOutbox()
		}
		cfg.Codes = NewOutbox(outbox)
	}
	switch {
	case o.DebugAddr != "":
		if _, err := loopback(ctx, o.DebugAddr); err != nil {
			return err
		}
		cfg.Stats = HTTPStats{URL: "http://" + o.DebugAddr + "/stats", PID: o.PID}
	case o.PID != 0:
		cfg.Stats = Process{PID: o.PID}
	}
	cfg.Progress = stderr

	rep, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	if o.JSON {
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
