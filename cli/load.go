package cli

import (
	"context"

	"github.com/otplogin/otplogin/load"
)

// runLoad runs otplogin load with the options its flags gave.
func runLoad(ctx context.Context, c *Config, stdio IO) error {
	return load.Command(ctx, c.Load, stdio.Stdout, stdio.Stderr)
}
