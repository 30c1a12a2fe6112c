package otp

import (
	"fmt"
	"time"
)

// Limits are the rules a Service enforces. DefaultLimits gives safe values;
// New fills zero fields from it and rejects values outside safe bounds.
type Limits struct {
	// MaxAttempts is the number of attempts one code allows; after that the
	// code is dead and a new one must be requested.
	MaxAttempts int
	// FailureBudget wrong codes per FailureWindow per address, across codes:
	// a new code does not reset it (NIST SP 800-63B rev 4). The rate may not
	// exceed 100 an hour.
	FailureBudget int
	FailureWindow time.Duration
	// ResendCooldown is the wait between two codes for one address. It may
	// not exceed the code TTL.
	ResendCooldown time.Duration
	// AddressIssues codes per IssueWindow for one address.
	AddressIssues int
	// ClientIssues codes per IssueWindow for one client (an SSH source
	// address, or "local").
	ClientIssues int
	IssueWindow  time.Duration
	// MaxPending caps the unexpired codes a store holds across all
	// addresses.
	MaxPending int
}

// DefaultLimits are the limits used for zero fields of Config.Limits.
func DefaultLimits() Limits {
	return Limits{
		MaxAttempts:    5,
		FailureBudget:  10,
		FailureWindow:  time.Hour,
		ResendCooldown: 60 * time.Second,
		AddressIssues:  5,
		ClientIssues:   20,
		IssueWindow:    time.Hour,
		MaxPending:     100_000,
	}
}

// fill replaces zero fields with defaults and checks each against bounds
// that keep a 6-digit code unguessable and the store bounded.
func (l *Limits) fill(ttl time.Duration) error {
	d := DefaultLimits()
	ints := []struct {
		name     string
		v        *int
		def      int
		min, max int
	}{
		{"MaxAttempts", &l.MaxAttempts, d.MaxAttempts, 1, 10},
		{"FailureBudget", &l.FailureBudget, d.FailureBudget, 1, 100},
		{"AddressIssues", &l.AddressIssues, d.AddressIssues, 1, 100},
		{"ClientIssues", &l.ClientIssues, d.ClientIssues, 1, 100_000},
		{"MaxPending", &l.MaxPending, d.MaxPending, 1, 10_000_000},
	}
	for _, f := range ints {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < f.min || *f.v > f.max {
			return fmt.Errorf("otp: Limits.%s must be %d..%d, got %d", f.name, f.min, f.max, *f.v)
		}
	}
	durs := []struct {
		name     string
		v        *time.Duration
		def      time.Duration
		min, max time.Duration
	}{
		{"FailureWindow", &l.FailureWindow, d.FailureWindow, time.Minute, 24 * time.Hour},
		{"IssueWindow", &l.IssueWindow, d.IssueWindow, time.Minute, 24 * time.Hour},
		{"ResendCooldown", &l.ResendCooldown, min(d.ResendCooldown, ttl), time.Second, ttl},
	}
	for _, f := range durs {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < f.min || *f.v > f.max {
			return fmt.Errorf("otp: Limits.%s must be %v..%v, got %v", f.name, f.min, f.max, *f.v)
		}
	}
	// The bounds above still allow 100 guesses a minute; what keeps a code
	// unguessable is the rate, so that is bounded too.
	if int64(l.FailureBudget)*int64(time.Hour) > maxFailuresPerHour*int64(l.FailureWindow) {
		return fmt.Errorf("otp: Limits.FailureBudget per FailureWindow must be at most %d an hour, got %d per %v",
			maxFailuresPerHour, l.FailureBudget, l.FailureWindow)
	}
	return nil
}

// maxFailuresPerHour bounds FailureBudget/FailureWindow. At this rate a
// month of guessing at one address finds a 6-digit code with a chance of
// 7%; at the default (10 an hour), under 1%.
const maxFailuresPerHour = 100
