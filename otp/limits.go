package otp

import (
	"time"
)

// Limits are the rules a Service enforces. DefaultLimits gives safe values;
// New fills zero fields from it and rejects values outside safe bounds.
//
// A client is who asks: the key Request and Verify are given (serve passes
// an IPv4 address or an IPv6 /64, local mode "local"). An IPv6 client is
// also counted at its /56 and /48 (see ClientKeys), each level with caps of
// its own, so that a /48 is not 65,536 clients.
//
// Per address the limits come in pairs: one client's share (ClientFailures,
// ClientAddressIssues) and a total for all clients together (FailureBudget,
// AddressIssues). A client that spends its share is refused alone; the
// totals keep guessing bounded however many clients there are.
//
// With the defaults, against one address, per window (an hour; fixed
// windows let up to twice as much through across a window boundary):
//
// One client (one IPv4 address, or any number of IPv6 addresses inside one
// /48) can have at most 3 codes mailed to it and make at most 10 wrong
// guesses (a chance of 1 in 100,000 to hit a 6-digit code), and cannot lock
// anyone out: once its share is spent it alone is refused. Its 10 guesses
// can kill at most 2 of the owner's codes (5 attempts each), so the owner's
// own 3 requests are enough, and the address's 10 codes have room for both
// (3 + 3).
//
// 1,000 clients together can have at most 10 codes mailed to it (and never
// more than one per ResendCooldown), and make at most 50 wrong guesses (10
// codes of 5 attempts, under the FailureBudget of 100): a chance of 1 in
// 20,000 an hour, about 3.5% for a month of non-stop attack. They can lock
// the address out: 4 clients use up its 10 codes, and then nobody can
// request one until the IssueWindow ends (a code already pending still
// verifies unless they kill it). No per-address hard cap can avoid that;
// ClientAddressIssues and AddressIssues set how many clients it takes.
//
// Across all addresses, the global rate (GlobalIssuesPerSecond,
// GlobalIssuesPerHour) bounds the mail the server sends, so a botnet cannot
// turn it into a mail cannon: with the defaults at most 10,000 codes an hour
// whatever the number of clients.
type Limits struct {
	// MaxAttempts is the number of attempts one code allows, from all
	// clients; after that the code is dead and a new one must be requested.
	MaxAttempts int

	// FailureBudget wrong codes per FailureWindow per address, all clients
	// together, across codes: a new code does not reset it (NIST SP 800-63B
	// rev 4). The rate may not exceed 100 an hour.
	FailureBudget int
	FailureWindow time.Duration
	// ClientFailures is the wrong codes per FailureWindow one client may
	// spend on one address (at most FailureBudget; default 10).
	// ClientFailures56 and ClientFailures48 cap all IPv6 clients in one /56
	// and one /48; they default to ClientFailures: towards one address a
	// whole /48 is one client.
	ClientFailures, ClientFailures56, ClientFailures48 int

	// ResendCooldown is the wait between two codes for one address. It may
	// not exceed the code TTL.
	ResendCooldown time.Duration
	// AddressIssues codes per IssueWindow for one address, all clients
	// together.
	AddressIssues int
	// ClientAddressIssues codes per IssueWindow one client may have sent to
	// one address (at most AddressIssues; default 3), at every level of an
	// IPv6 client.
	ClientAddressIssues int
	// ClientIssues codes per IssueWindow for one client, to all addresses.
	// ClientIssues56 and ClientIssues48 cap all IPv6 clients in one /56 and
	// one /48; they default to 2.5 and 5 times ClientIssues, since a /56 is
	// usually one home and a /48 one site (or 256 homes of one provider).
	ClientIssues, ClientIssues56, ClientIssues48 int
	IssueWindow                                  time.Duration

	// GlobalIssuesPerSecond and GlobalIssuesPerHour cap the codes the
	// store issues for all addresses and clients together, in fixed windows
	// of a second and of an hour (with a shared store, across all replicas).
	GlobalIssuesPerSecond, GlobalIssuesPerHour int

	// MaxPending caps the unexpired codes a store holds across all
	// addresses.
	MaxPending int
}

// DefaultLimits are the limits used for zero fields of Config.Limits. The
// per-client caps that default to a multiple of another field are filled by
// New; here they hold the values that go with these defaults.
//
// The global rate: 50 a second lets a crowd in at once (a room of 200
// people within ten seconds is 20 a second); 10,000 an hour bounds what a
// botnet can make the server mail in an hour, whatever the number of
// clients, and is more than one login server's users plausibly need.
// Operators with more users, or a mail relay with a lower quota, set their
// own.
func DefaultLimits() Limits {
	return Limits{
		MaxAttempts:           5,
		FailureBudget:         100,
		FailureWindow:         time.Hour,
		ClientFailures:        10,
		ClientFailures56:      10,
		ClientFailures48:      10,
		ResendCooldown:        60 * time.Second,
		AddressIssues:         10,
		ClientAddressIssues:   3,
		ClientIssues:          20,
		ClientIssues56:        50,
		ClientIssues48:        100,
		IssueWindow:           time.Hour,
		GlobalIssuesPerSecond: 50,
		GlobalIssuesPerHour:   10_000,
		MaxPending:            100_000,
	}
}

// Bounds of the fields without a bound that depends on another field.
const (
	maxClientIssues       = 100_000
	maxPrefixIssues       = 1_000_000
	maxIssuesPerSecond    = 100_000
	maxIssuesPerHour      = 100_000_000
	maxPendingCodes       = 10_000_000
	defaultClientFailures = 10
	defaultClientCodes    = 3
)

type intField struct {
	name     string
	v        *int
	def      int
	min, max int
}

// fill replaces zero fields with defaults and checks each against bounds
// that keep a 6-digit code unguessable and the store bounded. Fields whose
// default or bound derives from another come after it.
func (l *Limits) fill(ttl time.Duration) error {
	d := DefaultLimits()
	if err := fillInts(
		intField{"MaxAttempts", &l.MaxAttempts, d.MaxAttempts, 1, 10},
		intField{"FailureBudget", &l.FailureBudget, d.FailureBudget, 1, maxFailuresPerHour},
		intField{"AddressIssues", &l.AddressIssues, d.AddressIssues, 1, 100},
		intField{"ClientIssues", &l.ClientIssues, d.ClientIssues, 1, maxClientIssues},
		intField{"GlobalIssuesPerSecond", &l.GlobalIssuesPerSecond, d.GlobalIssuesPerSecond, 1, maxIssuesPerSecond},
		intField{"GlobalIssuesPerHour", &l.GlobalIssuesPerHour, d.GlobalIssuesPerHour, 1, maxIssuesPerHour},
		intField{"MaxPending", &l.MaxPending, d.MaxPending, 1, maxPendingCodes},
	); err != nil {
		return err
	}
	if err := fillInts(
		intField{"ClientFailures", &l.ClientFailures, min(defaultClientFailures, l.FailureBudget), 1, l.FailureBudget},
		intField{"ClientAddressIssues", &l.ClientAddressIssues, min(defaultClientCodes, l.AddressIssues), 1, l.AddressIssues},
		intField{"ClientIssues56", &l.ClientIssues56, max(l.ClientIssues*5/2, 1), 1, maxPrefixIssues},
		intField{"ClientIssues48", &l.ClientIssues48, l.ClientIssues * 5, 1, maxPrefixIssues},
	); err != nil {
		return err
	}
	if err := fillInts(
		intField{"ClientFailures56", &l.ClientFailures56, l.ClientFailures, 1, l.FailureBudget},
		intField{"ClientFailures48", &l.ClientFailures48, l.ClientFailures, 1, l.FailureBudget},
	); err != nil {
		return err
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
			return fieldError("Limits."+f.name, "must be %v..%v, got %v", f.min, f.max, *f.v)
		}
	}
	// The bounds above still allow 100 guesses a minute; what keeps a code
	// unguessable is the rate, so that is bounded too.
	if int64(l.FailureBudget)*int64(time.Hour) > maxFailuresPerHour*int64(l.FailureWindow) {
		return fieldError("Limits.FailureBudget", "per FailureWindow must be at most %d an hour, got %d per %v",
			maxFailuresPerHour, l.FailureBudget, l.FailureWindow)
	}
	return nil
}

func fillInts(fields ...intField) error {
	for _, f := range fields {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < f.min || *f.v > f.max {
			return fieldError("Limits."+f.name, "must be %d..%d, got %d", f.min, f.max, *f.v)
		}
	}
	return nil
}

// maxFailuresPerHour bounds FailureBudget/FailureWindow (NIST SP 800-63B:
// at most 100 failed attempts per account). At this rate a month of
// guessing at one address finds a 6-digit code with a chance of 7%.
const maxFailuresPerHour = 100
