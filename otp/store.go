package otp

import (
	"context"
	"time"
)

// ExpiredRetention is how long after ExpiresAt a store keeps reporting
// ErrExpired for a code (so the user reads "expired", not "no code"); after
// that it may forget the code and report ErrNoCode.
const ExpiredRetention = 15 * time.Minute

// Pending is one issued code as a Store keeps it. It never holds the code,
// only its HMAC.
type Pending struct {
	// Hash is HMAC-SHA256(server key, address key || 0x00 || code), always
	// 32 bytes.
	Hash []byte
	// IssuedAt is when the code was issued; ExpiresAt when it stops
	// verifying; ResendAt when a new code may replace it.
	IssuedAt, ExpiresAt, ResendAt time.Time
	// Attempts counts the verification attempts charged against this code.
	Attempts int
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
// constant time. The conformance suite in otp/storetest pins these rules.
//
// Keys: addr is the lower-cased normalised address and client the client
// identity, as the Service has them. A client is counted under each of its
// scopes, lim.ClientScopes(client) (an IPv6 client at its /64, /56 and /48),
// every scope with its own counters and caps; "the client's counter" below
// means one counter per scope, and a rule on it refuses when any scope's
// counter is at its cap, with RetryAt the latest end among those that are. A
// store that keeps addresses and clients outside the process should name
// them by a keyed hash, so that a copy of it names nobody (the Redis store
// does); the memory store needs no hashing, which keeps Verify at one HMAC.
//
// Time: every rule is decided with the now passed in, never a store's own
// clock, and times are kept to at least millisecond precision. A store may
// use real TTLs only to collect garbage, computed from differences of passed
// times (e.g. ExpiresAt+ExpiredRetention-now), so that state is never
// dropped while a rule can still read it.
//
// Counters are fixed windows: a window opens at the first event counted
// after the previous window ended, and lasts the limit's window (the global
// rate's: a second and an hour); a capped call reports RetryAt = window
// start + window. A refused call (any error, or Existing) charges nothing.
//
// Stores return the package's typed errors (ErrNoCode, ErrExpired,
// ErrTooManyAttempts, *LimitError) for rule outcomes and wrap anything else
// (a lost connection) so that errors.Is(err, ErrUnavailable) holds.
//
// A Store outside the process may also have a method Ping(ctx
// context.Context) error: a cheap check that it answers, for a server's
// readiness probe (the Redis store has one; the memory store is always
// ready and has none).
type Store interface {
	// Issue applies the issue-time rules for addr and client at now, in
	// order, stopping at the first that refuses:
	//  1. the address's failure budget (FailureBudget) is spent, then the
	//     client's share of it (ClientScope.Failures): *LimitError
	//     LimitFailures;
	//  2. a live code (now < ExpiresAt, Attempts < MaxAttempts) is inside
	//     its cooldown (now < ResendAt): it is returned as Existing and
	//     nothing changes;
	//  3. a dead code is inside its cooldown: *LimitError LimitResend with
	//     RetryAt = its ResendAt;
	//  4. the address's issue cap (AddressIssues), then the client's share
	//     of it (ClientScope.AddressIssues): LimitAddress; the client's
	//     issue cap over all addresses (ClientScope.Issues): LimitClient;
	//  5. the global rate: GlobalIssuesPerSecond codes issued in the open
	//     one-second window, then GlobalIssuesPerHour in the open one-hour
	//     window: LimitGlobalRate;
	//  6. the global cap: MaxPending unexpired codes (now < ExpiresAt) are
	//     held, not counting one addr already holds (a replacement needs no
	//     new slot): LimitBusy, RetryAt no later than when the earliest of
	//     them expires. A live code is never evicted.
	// If all allow, p replaces any previous code for addr (with Attempts 0)
	// and every issue counter of steps 4 and 5 is charged.
	Issue(ctx context.Context, addr, client string, p Pending, now time.Time, lim Limits) (IssueResult, error)

	// Attempt checks, in order: no code for addr (ErrNoCode); the code has
	// expired, now >= ExpiresAt (ErrExpired); it has used all MaxAttempts
	// (ErrTooManyAttempts); the address's failure budget is spent, then the
	// client's share of it (*LimitError LimitFailures). Those charge
	// nothing. Otherwise it charges one attempt against the code and one
	// failure against the address's budget and the client's share, and
	// returns the code as stored (Attempts includes this attempt) for the
	// caller to compare. A refused Attempt for an unknown addr creates no
	// state.
	Attempt(ctx context.Context, addr, client string, now time.Time, lim Limits) (Pending, error)

	// Consume removes addr's pending code if its hash is still hash and then
	// refunds the failure the caller's Attempt charged (pass the same
	// client) from the address's budget and the client's share (never
	// below zero). It reports whether this call removed it: of many callers
	// with the right hash exactly one wins. The attempt counters of a
	// removed code go with it.
	Consume(ctx context.Context, addr, client string, hash []byte) (bool, error)

	// Discard removes addr's pending code if its hash is still hash; used
	// when delivery failed for certain. Issue counters are not refunded; the
	// cooldown goes with the code.
	Discard(ctx context.Context, addr string, hash []byte) error
}
