//go:build !unix

// Package proccpu reads the CPU time the calling process has used, for the
// server's /stats and the load generator's own figures.
package proccpu

import "time"

// Self is 0 here: the platform cannot say, and reports leave CPU out.
func Self() time.Duration { return 0 }
