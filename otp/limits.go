package otp

import "time"

// Limits are the rules a Service enforces. DefaultLimits gives safe values;
// Config.validate rejects values outside safe bounds.
type Limits struct {
	// MaxAttempts is the number of attempts one code allows; after that the
	// code is dead and a new one must be requested.
	MaxAttempts int
	// FailureBudget wrong codes per FailureWindow per address, across codes:
	// a new code does not reset it (NIST SP 800-63B rev 4).
	FailureBudget int
	FailureWindow time.Duration
	// ResendCooldown is the wait between two codes for one address.
	ResendCooldown time.Duration
	// AddressIssues codes per IssueWindow for one address.
	AddressIssues int
	// ClientIssues codes per IssueWindow for one client (an SSH source
	// address, or "local").
	ClientIssues int
	IssueWindow  time.Duration
	// MaxPending caps the live codes a store holds across all addresses.
	MaxPending int
}

// DefaultLimits are the limits used when Config.Limits is zero.
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
