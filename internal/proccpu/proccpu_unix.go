//go:build unix

// Package proccpu reads the CPU time the calling process has used, for the
// server's /stats and the load generator's own figures.
package proccpu

import (
	"syscall"
	"time"
)

// Self is the user plus system CPU time this process has used, or 0 if
// the platform cannot say.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
