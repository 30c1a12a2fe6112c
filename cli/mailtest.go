package cli

import (
	"context"
	"errors"
	"fmt"
)

// runMailTest sends one test message with the current mail settings and
// says exactly what happened, for the operator setting up SMTP.
func runMailTest(ctx context.Context, c *Config, stdio IO) error {
	if c.MailTestTo == "" {
		return mailTestTo.fail(errors.New("required, e.g. otplogin mail-test --to you@example.com"))
	}
	m, err := openMailer(ctx, c)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.dev != nil {
		fmt.Fprintln(stdio.Stdout, "No SMTP server configured: sending to the built-in dev mail server.")
	}
	if err := m.sender.Test(ctx, c.MailTestTo); err != nil {
		return fmt.Errorf("mail-test: %w", err)
	}
	fmt.Fprintf(stdio.Stdout, "Sent a test message to %s from %s.\n", c.MailTestTo, m.sender.From())
	if m.dev != nil {
		fmt.Fprintln(stdio.Stdout, "Saved in the outbox:", m.dev.Outbox())
	}
	return nil
}
