package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/otp"
)

// runOutbox prints the newest code the dev mail server saved for address:
// the dev-mode way to read a code, the same on every system.
func runOutbox(ctx context.Context, c *Config, address string, stdio IO) error {
	addr, err := otp.NormalizeAddress(address)
	if err != nil {
		return usageError{fmt.Errorf("%q is not an email address: %w", address, err)}
	}
	outbox := c.Outbox
	if outbox == "" {
		outbox = devserver.DefaultOutbox()
	}
	code, err := devserver.NewestCode(ctx, outbox, addr, c.OutboxWait)
	switch {
	case errors.Is(err, devserver.ErrNoMessage):
		fmt.Fprintf(stdio.Stderr, "otplogin: no code for %s in %s yet\n", addr, outbox)
		return errNotVerified
	case err != nil:
		return err
	}
	_, err = fmt.Fprintln(stdio.Stdout, code)
	return err
}
