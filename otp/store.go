package otp

import (
	"context"
	"time"
)

// Pending is one issued code as a Store keeps it. It never holds the code,
// only its HMAC.
type Pending struct {
	// Hash is HMAC-SHA256(server key, normalised address, code).
	Hash []byte
	// IssuedAt is when the code was issued; ExpiresAt when it stops
	// verifying; ResendAt when a new code may replace it.
	IssuedAt, ExpiresAt, ResendAt time.Time
	// Attempts counts the verification attempts charged against this code.
	Attempts int
}

// Live reports whether p can still verify at now under lim.
func (p Pending) Live(now time.Time, lim Limits) bool {
	return now.Before(p.ExpiresAt) && p.Attempts < lim.MaxAttempts
}

// IssueResult is what Store.Issue did.
type IssueResult struct {
	// Existing is set when a live code for the address is still inside its
	// resend cooldown: nothing was stored and the caller should send nothing.
	Existing *Pending
}

// Store keeps pending codes and the counters behind the limits. Every method
// is one atomic step, so that limits hold when many goroutines, processes or
// replicas share a store: a Redis store implements each method as one
// server-side script. A Store compares no codes; the Service does that in
// constant time.
//
// Stores return the package's typed errors (ErrNoCode, ErrExpired,
// ErrTooManyAttempts, *LimitError) for rule outcomes and wrap anything else
// (a lost connection) so that errors.Is(err, ErrUnavailable) holds.
type Store interface {
	// Issue applies the issue-time rules for addr and client at now, in
	// order: the address failure budget (*LimitError LimitFailures); a live
	// code inside its cooldown (returned as Existing, nothing changes); a
	// dead code inside its cooldown (*LimitError LimitResend); the
	// per-address and per-client issue caps (LimitAddress, LimitClient); the
	// global cap on pending codes (LimitBusy, never evicting a live code).
	// If all allow, p replaces any previous code for addr and both issue
	// counters are charged.
	Issue(ctx context.Context, addr, client string, p Pending, now time.Time, lim Limits) (IssueResult, error)

	// Attempt charges one attempt against addr's pending code and one
	// failure against addr's failure budget, then returns the code as stored
	// (Attempts includes this attempt) for the caller to compare. It returns
	// ErrNoCode, ErrExpired, ErrTooManyAttempts (the code is dead and nothing
	// is charged) or a *LimitError LimitFailures when the budget is spent.
	Attempt(ctx context.Context, addr string, now time.Time, lim Limits) (Pending, error)

	// Consume removes addr's pending code if its hash is still hash and
	// refunds the failure charged by the matching Attempt. It reports whether
	// this call removed it: of many callers with the right code exactly one
	// wins.
	Consume(ctx context.Context, addr string, hash []byte) (bool, error)

	// Discard removes addr's pending code if its hash is still hash; used
	// when delivery failed for certain. Issue counters are not refunded.
	Discard(ctx context.Context, addr string, hash []byte) error
}
