package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/otplogin/otplogin/otp"
)

// runMailTest sends one test message with the current mail settings and
// says exactly what happened, for the operator setting up SMTP.
func runMailTest(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	s := newSettings("otplogin mail-test", getenv, mailSettings)
	to := s.fs.String("to", "", "address to send the test message to (required)")
	s.fs.SetOutput(stderr) // like the other commands: stdout is for results
	if err := s.parse(args); err != nil {
		return err
	}
	if *to == "" {
		return configError{errors.New("--to: required, e.g. otplogin mail-test --to you@example.com")}
	}
	addr, err := otp.NormalizeAddress(*to)
	if err != nil {
		return configError{fmt.Errorf("--to: %w", err)}
	}
	m, err := openMailer(ctx, s)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.dev != nil {
		fmt.Fprintln(stdout, "No SMTP server configured: sending to the built-in dev mail server.")
	}
	if err := m.sender.Test(ctx, addr); err != nil {
		return fmt.Errorf("mail-test: %w", err)
	}
	fmt.Fprintf(stdout, "Sent a test message to %s from %s.\n", addr, m.sender.From())
	if m.dev != nil {
		fmt.Fprintln(stdout, "Saved in the outbox:", m.dev.Outbox())
	}
	return nil
}
