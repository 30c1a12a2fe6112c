// Package storetest is the conformance suite for otp.Store implementations.
// A store passes when
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) otp.Store { return newIsolatedStore(t) })
//	}
//
// passes under -race. The suite drives the store only through otp.Store,
// with explicit now values derived from a fixed base and whole milliseconds
// apart; it never sleeps, so a store that uses real TTLs only for garbage
// collection (computed from differences of passed times) passes too.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otplogin/otplogin/otp"
)

// base is the suite's clock origin; far from the wall clock on purpose, so
// a store that reads its own clock for a rule fails, and not on a whole
// second, so a store that rounds a time fails too.
var base = time.Date(2031, time.March, 4, 5, 6, 7, 123456789, time.UTC)

const (
	ttl      = 5 * time.Minute
	cooldown = time.Minute
)

// Run runs the suite. newStore must return an empty store that shares no
// state with any other store it returned (e.g. a fresh key prefix), and
// clean it up with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) otp.Store) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(&h{t: t, s: newStore(t), ctx: t.Context()})
		})
	}
}

// h wraps one store for one test.
type h struct {
	t   *testing.T
	s   otp.Store
	ctx context.Context
}

func limits() otp.Limits { return otp.DefaultLimits() }

// at is base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

func newHash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// pend is a fresh code issued at now with the suite's TTL and cooldown.
func (h *h) pend(now time.Time) otp.Pending {
	return otp.Pending{Hash: newHash(), IssuedAt: now, ExpiresAt: now.Add(ttl), ResendAt: now.Add(cooldown)}
}

func (h *h) issue(addr, client string, now time.Time, lim otp.Limits) (otp.Pending, otp.IssueResult, error) {
	p := h.pend(now)
	res, err := h.s.Issue(h.ctx, addr, client, p, now, lim)
	return p, res, err
}

// mustIssue issues a new code and fails unless it was stored.
func (h *h) mustIssue(addr, client string, now time.Time, lim otp.Limits) otp.Pending {
	h.t.Helper()
	p, res, err := h.issue(addr, client, now, lim)
	if err != nil || res.Existing != nil {
		h.t.Fatalf("Issue(%s) at +%v = %+v, %v; want stored", addr, now.Sub(base), res, err)
	}
	return p
}

func (h *h) mustAttempt(addr, client string, now time.Time, lim otp.Limits) otp.Pending {
	h.t.Helper()
	p, err := h.s.Attempt(h.ctx, addr, client, now, lim)
	if err != nil {
		h.t.Fatalf("Attempt(%s, %s) at +%v: %v", addr, client, now.Sub(base), err)
	}
	return p
}

func (h *h) wantAttemptErr(addr, client string, now time.Time, lim otp.Limits, want error) {
	h.t.Helper()
	if _, err := h.s.Attempt(h.ctx, addr, client, now, lim); !errors.Is(err, want) {
		h.t.Fatalf("Attempt(%s, %s) at +%v: err %v, want %v", addr, client, now.Sub(base), err, want)
	}
}

// wantLimit fails unless err is a *LimitError of kind with RetryAt exactly
// latest; for LimitBusy, anywhere in (now, latest], as a store may answer
// "busy" with a retry time up to its sweep interval early.
func wantLimit(t *testing.T, err error, kind otp.LimitKind, now, latest time.Time) *otp.LimitError {
	t.Helper()
	var le *otp.LimitError
	if !errors.As(err, &le) || le.Kind != kind {
		t.Fatalf("err = %v, want *LimitError %v", err, kind)
	}
	if kind != otp.LimitBusy && !le.RetryAt.Equal(latest) {
		t.Fatalf("%v RetryAt = +%v, want +%v", kind, le.RetryAt.Sub(base), latest.Sub(base))
	}
	if !le.RetryAt.After(now) || le.RetryAt.After(latest) {
		t.Fatalf("%v RetryAt = +%v, want in (+%v, +%v]", kind, le.RetryAt.Sub(base), now.Sub(base), latest.Sub(base))
	}
	return le
}

func samePending(t *testing.T, got, want otp.Pending, attempts int) {
	t.Helper()
	if string(got.Hash) != string(want.Hash) || !got.IssuedAt.Equal(want.IssuedAt) ||
		!got.ExpiresAt.Equal(want.ExpiresAt) || !got.ResendAt.Equal(want.ResendAt) || got.Attempts != attempts {
		t.Fatalf("pending = %+v\nwant %+v with Attempts %d", got, want, attempts)
	}
}

type testCase struct {
	name string
	run  func(h *h)
}

var cases = []testCase{
	{"IssueThenAttempt", func(h *h) {
		lim := limits()
		p := h.mustIssue("a@example.com", "c1", at(0), lim)
		samePending(h.t, h.mustAttempt("a@example.com", "c1", at(time.Second), lim), p, 1)
		samePending(h.t, h.mustAttempt("a@example.com", "c1", at(2*time.Second), lim), p, 2)
	}},
	{"NoCode", func(h *h) {
		lim := limits()
		lim.FailureBudget = 2
		for i := range 5 {
			h.wantAttemptErr("nobody@example.com", "c1", at(time.Duration(i)*time.Second), lim, otp.ErrNoCode)
		}
		// Refused attempts charged no failures.
		h.mustIssue("nobody@example.com", "c1", at(10*time.Second), lim)
		h.mustAttempt("nobody@example.com", "c1", at(11*time.Second), lim)
		h.mustAttempt("nobody@example.com", "c1", at(12*time.Second), lim)
		// Another address's code is not this one's.
		h.wantAttemptErr("other@example.com", "c1", at(13*time.Second), lim, otp.ErrNoCode)
	}},
	{"Expired", func(h *h) {
		lim := limits()
		p := h.mustIssue("a@example.com", "c1", at(0), lim)
		h.mustAttempt("a@example.com", "c1", p.ExpiresAt.Add(-time.Millisecond), lim)
		h.wantAttemptErr("a@example.com", "c1", p.ExpiresAt, lim, otp.ErrExpired)
		// Activity elsewhere (which may trigger clean-up) does not turn
		// "expired" into "no code" within the retention.
		late := p.ExpiresAt.Add(otp.ExpiredRetention - time.Millisecond)
		h.mustIssue("b@example.com", "c2", late, lim)
		h.wantAttemptErr("a@example.com", "c1", late, lim, otp.ErrExpired)
	}},
	{"MaxAttempts", func(h *h) {
		lim := limits()
		lim.FailureBudget = 7
		p := h.mustIssue("a@example.com", "c1", at(0), lim)
		for i := 1; i <= lim.MaxAttempts; i++ {
			samePending(h.t, h.mustAttempt("a@example.com", "c1", at(time.Duration(i)*time.Second), lim), p, i)
		}
		for i := range 3 {
			h.wantAttemptErr("a@example.com", "c1", at(time.Duration(10+i)*time.Second), lim, otp.ErrTooManyAttempts)
		}
		// The refused attempts charged no failures: 5 of 7 are used.
		h.mustIssue("a@example.com", "c1", at(cooldown), lim)
		h.mustAttempt("a@example.com", "c1", at(cooldown+time.Second), lim)
		h.mustAttempt("a@example.com", "c1", at(cooldown+2*time.Second), lim)
		_, err := h.s.Attempt(h.ctx, "a@example.com", "c1", at(cooldown+3*time.Second), lim)
		wantLimit(h.t, err, otp.LimitFailures, at(cooldown+3*time.Second), at(time.Second).Add(lim.FailureWindow))
	}},
	{"ConsumeOnce", func(h *h) {
		lim := limits()
		p := h.mustIssue("a@example.com", "c1", at(0), lim)
		h.mustAttempt("a@example.com", "c1", at(time.Second), lim)
		if ok, err := h.s.Consume(h.ctx, "a@example.com", "c1", newHash()); ok || err != nil {
			h.t.Fatalf("Consume with a wrong hash = %v, %v; want false, nil", ok, err)
		}
		h.mustAttempt("a@example.com", "c1", at(2*time.Second), lim) // still there
		if ok, err := h.s.Consume(h.ctx, "b@example.com", "c1", p.Hash); ok || err != nil {
			h.t.Fatalf("Consume for another address = %v, %v; want false, nil", ok, err)
		}
		if ok, err := h.s.Consume(h.ctx, "a@example.com", "c1", p.Hash); !ok || err != nil {
			h.t.Fatalf("Consume = %v, %v; want true, nil", ok, err)
		}
		if ok, err := h.s.Consume(h.ctx, "a@example.com", "c1", p.Hash); ok || err != nil {
			h.t.Fatalf("second Consume = %v, %v; want false, nil", ok, err)
		}
		h.wantAttemptErr("a@example.com", "c1", at(3*time.Second), lim, otp.ErrNoCode)
		// The cooldown went with the code.
		h.mustIssue("a@example.com", "c1", at(4*time.Second), lim)
	}},
	{"ConsumeRefundsFailure", func(h *h) {
		lim := limits()
		lim.FailureBudget = 3
		lim.AddressIssues = 50
		lim.ClientAddressIssues = 50
		for i := range 10 {
			now := at(time.Duration(i) * cooldown)
			p := h.mustIssue("a@example.com", "c1", now, lim)
			h.mustAttempt("a@example.com", "c1", now.Add(time.Second), lim)
			if ok, err := h.s.Consume(h.ctx, "a@example.com", "c1", p.Hash); !ok || err != nil {
				h.t.Fatalf("Consume #%d = %v, %v", i, ok, err)
			}
		}
	}},
	{"FailureBudgetSurvivesNewCode", func(h *h) {
		lim := limits()
		lim.FailureBudget = 7
		lim.FailureWindow = 20 * time.Minute
		h.mustIssue("a@example.com", "c1", at(0), lim)
		for i := 1; i <= 5; i++ {
			h.mustAttempt("a@example.com", "c1", at(time.Duration(i)*time.Second), lim)
		}
		now := at(cooldown)
		h.mustIssue("a@example.com", "c1", now, lim)
		h.mustAttempt("a@example.com", "c1", now.Add(time.Second), lim)
		h.mustAttempt("a@example.com", "c1", now.Add(2*time.Second), lim)
		end := at(time.Second).Add(lim.FailureWindow) // the window opened at the first failure
		_, err := h.s.Attempt(h.ctx, "a@example.com", "c1", now.Add(3*time.Second), lim)
		le := wantLimit(h.t, err, otp.LimitFailures, now.Add(3*time.Second), end)
		// The budget outranks the live code in its cooldown.
		_, _, err = h.issue("a@example.com", "c1", now.Add(4*time.Second), lim)
		wantLimit(h.t, err, otp.LimitFailures, now.Add(4*time.Second), end)
		// And later, past the cooldown.
		_, _, err = h.issue("a@example.com", "c1", now.Add(2*cooldown), lim)
		wantLimit(h.t, err, otp.LimitFailures, now.Add(2*cooldown), end)
		// At RetryAt both work again.
		h.mustIssue("a@example.com", "c1", le.RetryAt, lim)
		h.mustAttempt("a@example.com", "c1", le.RetryAt.Add(time.Second), lim)
	}},
	{"CooldownKeepsLiveCode", func(h *h) {
		lim := limits()
		p := h.mustIssue("a@example.com", "c1", at(0), lim)
		for _, d := range []time.Duration{time.Millisecond, 30 * time.Second, cooldown - time.Millisecond} {
			q, res, err := h.issue("a@example.com", "c2", at(d), lim)
			if err != nil || res.Existing == nil {
				h.t.Fatalf("Issue at +%v = %+v, %v; want Existing", d, res, err)
			}
			samePending(h.t, *res.Existing, p, 0)
			if string(q.Hash) == string(p.Hash) {
				h.t.Fatal("test hashes collide")
			}
		}
		samePending(h.t, h.mustAttempt("a@example.com", "c1", at(cooldown-time.Millisecond), lim), p, 1)
		// At ResendAt a new code replaces the old one, attempts reset.
		q := h.mustIssue("a@example.com", "c1", p.ResendAt, lim)
		samePending(h.t, h.mustAttempt("a@example.com", "c1", p.ResendAt.Add(time.Second), lim), q, 1)
	}},
	{"DeadCodeInCooldown", func(h *h) {
		lim := limits()
		lim.MaxAttempts = 2
		p := h.mustIssue("a@example.com", "c1", at(0), lim)
		h.mustAttempt("a@example.com", "c1", at(time.Second), lim)
		h.mustAttempt("a@example.com", "c1", at(2*time.Second), lim)
		_, _, err := h.issue("a@example.com", "c1", at(3*time.Second), lim)
		le := wantLimit(h.t, err, otp.LimitResend, at(3*time.Second), p.ResendAt)
		if !le.RetryAt.Equal(p.ResendAt) {
			h.t.Fatalf("RetryAt = %v, want ResendAt %v", le.RetryAt, p.ResendAt)
		}
		h.mustIssue("a@example.com", "c1", p.ResendAt, lim)
	}},
	{"AddressIssueCap", func(h *h) {
		lim := limits()
		for i := range lim.AddressIssues {
			h.mustIssue("a@example.com", fmt.Sprint("c", i), at(time.Duration(i)*cooldown), lim)
		}
		now := at(time.Duration(lim.AddressIssues) * cooldown)
		_, _, err := h.issue("a@example.com", "fresh", now, lim)
		le := wantLimit(h.t, err, otp.LimitAddress, now, at(lim.IssueWindow))
		h.mustIssue("b@example.com", "fresh", now, lim) // other addresses are unaffected
		h.mustIssue("a@example.com", "fresh", le.RetryAt, lim)
	}},
	{"ClientIssueCap", func(h *h) {
		lim := limits()
		for i := range lim.ClientIssues {
			h.mustIssue(fmt.Sprintf("u%d@example.com", i), "c1", at(time.Duration(i)*time.Second), lim)
		}
		now := at(time.Hour / 2)
		_, _, err := h.issue("late@example.com", "c1", now, lim)
		le := wantLimit(h.t, err, otp.LimitClient, now, at(lim.IssueWindow))
		// The refused call charged the address nothing.
		lim1 := lim
		lim1.AddressIssues = 1
		h.mustIssue("late@example.com", "c2", now.Add(time.Second), lim1)
		h.mustIssue("x@example.com", "c1", le.RetryAt, lim)
	}},
	{"RefusedIssuesChargeNothing", func(h *h) {
		lim := limits()
		lim.AddressIssues = 2
		lim.ClientIssues = 2
		h.mustIssue("a@example.com", "c1", at(0), lim)
		for i := range 5 {
			_, res, err := h.issue("a@example.com", "c1", at(time.Duration(i+1)*time.Second), lim)
			if err != nil || res.Existing == nil {
				h.t.Fatalf("Issue in cooldown = %+v, %v; want Existing", res, err)
			}
		}
		h.mustIssue("a@example.com", "c1", at(cooldown), lim)
		_, _, err := h.issue("a@example.com", "c2", at(2*cooldown), lim)
		wantLimit(h.t, err, otp.LimitAddress, at(2*cooldown), at(lim.IssueWindow))
		_, _, err = h.issue("b@example.com", "c1", at(2*cooldown), lim)
		wantLimit(h.t, err, otp.LimitClient, at(2*cooldown), at(lim.IssueWindow))
	}},
	{"GlobalCap", func(h *h) {
		lim := limits()
		lim.MaxPending = 3
		a := h.mustIssue("a@example.com", "c1", at(0), lim)
		b := h.mustIssue("b@example.com", "c2", at(time.Second), lim)
		h.mustIssue("c@example.com", "c3", at(2*time.Second), lim)
		_, _, err := h.issue("d@example.com", "c4", at(3*time.Second), lim)
		wantLimit(h.t, err, otp.LimitBusy, at(3*time.Second), a.ExpiresAt)
		// Nobody's live code was evicted.
		for _, addr := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			_, res, err := h.issue(addr, "c9", at(4*time.Second), lim)
			if err != nil || res.Existing == nil {
				h.t.Fatalf("Issue(%s) in cooldown at cap = %+v, %v; want Existing", addr, res, err)
			}
		}
		// A replacement reuses its own slot.
		a = h.mustIssue("a@example.com", "c1", a.ResendAt, lim)
		// A used code frees its slot.
		h.mustAttempt("b@example.com", "c1", at(cooldown+time.Second), lim)
		if ok, err := h.s.Consume(h.ctx, "b@example.com", "c1", b.Hash); !ok || err != nil {
			h.t.Fatalf("Consume = %v, %v", ok, err)
		}
		h.mustIssue("d@example.com", "c4", at(cooldown+2*time.Second), lim)
		_, _, err = h.issue("e@example.com", "c5", at(cooldown+3*time.Second), lim)
		wantLimit(h.t, err, otp.LimitBusy, at(cooldown+3*time.Second), at(2*time.Second).Add(ttl))
		// An expired code frees its slot the moment it expires (c's is the
		// earliest), although it still answers ErrExpired.
		cExp := at(2 * time.Second).Add(ttl)
		h.mustIssue("e@example.com", "c5", cExp, lim)
		h.wantAttemptErr("c@example.com", "c1", cExp, lim, otp.ErrExpired)
	}},
	{"Discard", func(h *h) {
		lim := limits()
		lim.AddressIssues = 2
		p := h.mustIssue("a@example.com", "c1", at(0), lim)
		if err := h.s.Discard(h.ctx, "a@example.com", newHash()); err != nil {
			h.t.Fatal(err)
		}
		h.mustAttempt("a@example.com", "c1", at(time.Second), lim) // a stale hash removed nothing
		if err := h.s.Discard(h.ctx, "a@example.com", p.Hash); err != nil {
			h.t.Fatal(err)
		}
		h.wantAttemptErr("a@example.com", "c1", at(2*time.Second), lim, otp.ErrNoCode)
		// The cooldown went with the code, the issue count did not.
		h.mustIssue("a@example.com", "c1", at(3*time.Second), lim)
		_, _, err := h.issue("a@example.com", "c1", at(3*time.Second+cooldown), lim)
		wantLimit(h.t, err, otp.LimitAddress, at(3*time.Second+cooldown), at(lim.IssueWindow))
		if err := h.s.Discard(h.ctx, "nobody@example.com", p.Hash); err != nil {
			h.t.Fatalf("Discard of nothing: %v", err)
		}
	}},
	{"ParallelAttempts", func(h *h) {
		lim := limits()
		lim.FailureBudget = 100
		h.mustIssue("a@example.com", "c1", at(0), lim)
		ok, errs := parallel(64, func(int) error {
			_, err := h.s.Attempt(h.ctx, "a@example.com", "c1", at(time.Second), lim)
			return err
		})
		if ok != lim.MaxAttempts || errs[otp.ErrTooManyAttempts] != 64-lim.MaxAttempts {
			h.t.Fatalf("64 parallel attempts: %d verdicts, errors %v; want %d verdicts", ok, errs, lim.MaxAttempts)
		}
	}},
	{"ParallelFailureBudget", func(h *h) {
		lim := limits()
		lim.MaxAttempts = 10
		lim.FailureBudget = 7
		h.mustIssue("a@example.com", "c1", at(0), lim)
		ok, _ := parallel(64, func(int) error {
			_, err := h.s.Attempt(h.ctx, "a@example.com", "c1", at(time.Second), lim)
			return err
		})
		if ok != lim.FailureBudget {
			h.t.Fatalf("64 parallel attempts: %d verdicts, want %d", ok, lim.FailureBudget)
		}
	}},
	{"ParallelConsume", func(h *h) {
		lim := limits()
		p := h.mustIssue("a@example.com", "c1", at(0), lim)
		h.mustAttempt("a@example.com", "c1", at(time.Second), lim)
		var wins sync.Map
		_, errs := parallel(32, func(i int) error {
			won, err := h.s.Consume(h.ctx, "a@example.com", "c1", p.Hash)
			if won {
				wins.Store(i, true)
			}
			return err
		})
		n := 0
		wins.Range(func(any, any) bool { n++; return true })
		if n != 1 || len(errs) != 0 {
			h.t.Fatalf("32 parallel Consume: %d won, errors %v; want exactly 1", n, errs)
		}
	}},
	{"ParallelIssueSameAddress", func(h *h) {
		lim := limits()
		var stored sync.Map
		ok, errs := parallel(64, func(i int) error {
			_, res, err := h.issue("a@example.com", fmt.Sprint("c", i), at(0), lim)
			if err == nil && res.Existing == nil {
				stored.Store(i, true)
			}
			return err
		})
		n := 0
		stored.Range(func(any, any) bool { n++; return true })
		if n != 1 || ok != 64 {
			h.t.Fatalf("64 parallel Issue for one address: %d stored, %d ok, errors %v; want 1 stored, 63 Existing", n, ok, errs)
		}
	}},
	{"ParallelIssueClientCap", func(h *h) {
		lim := limits()
		ok, errs := parallel(64, func(i int) error {
			_, _, err := h.issue(fmt.Sprintf("u%d@example.com", i), "c1", at(0), lim)
			return err
		})
		if ok != lim.ClientIssues || errs[limitKey(otp.LimitClient)] != 64-lim.ClientIssues {
			h.t.Fatalf("64 parallel Issue from one client: %d stored, errors %v; want %d", ok, errs, lim.ClientIssues)
		}
	}},
	{"ParallelIssueGlobalCap", func(h *h) {
		lim := limits()
		lim.MaxPending = 10
		ok, errs := parallel(64, func(i int) error {
			_, _, err := h.issue(fmt.Sprintf("u%d@example.com", i), fmt.Sprint("c", i), at(0), lim)
			return err
		})
		if ok != lim.MaxPending || errs[limitKey(otp.LimitBusy)] != 64-lim.MaxPending {
			h.t.Fatalf("64 parallel Issue: %d stored, errors %v; want %d", ok, errs, lim.MaxPending)
		}
	}},
	{"ClientShareOfFailures", func(h *h) {
		// A client that spent its share of the address's failure budget is
		// refused alone; the others go on until the total is spent.
		lim := limits()
		lim.MaxAttempts = 10
		lim.FailureBudget = 5
		lim.ClientFailures = 3
		h.mustIssue("a@example.com", "c1", at(0), lim)
		for i := 1; i <= 3; i++ {
			h.mustAttempt("a@example.com", "c1", at(time.Duration(i)*time.Second), lim)
		}
		end := at(time.Second).Add(lim.FailureWindow) // both windows opened at c1's first failure
		_, err := h.s.Attempt(h.ctx, "a@example.com", "c1", at(4*time.Second), lim)
		wantLimit(h.t, err, otp.LimitFailures, at(4*time.Second), end)
		// The share outranks the live code in its cooldown, for c1 only.
		_, _, err = h.issue("a@example.com", "c1", at(5*time.Second), lim)
		wantLimit(h.t, err, otp.LimitFailures, at(5*time.Second), end)
		if _, res, err := h.issue("a@example.com", "c2", at(5*time.Second), lim); err != nil || res.Existing == nil {
			h.t.Fatalf("Issue from c2 = %+v, %v; want Existing", res, err)
		}
		// c2 spends the rest of the total (3 + 2 = 5); c1's refused
		// attempt took none of it. Then everyone is refused.
		h.mustAttempt("a@example.com", "c2", at(6*time.Second), lim)
		if p := h.mustAttempt("a@example.com", "c2", at(7*time.Second), lim); p.Attempts != 5 {
			h.t.Fatalf("Attempts = %d, want 5", p.Attempts)
		}
		for _, c := range []string{"c1", "c2", "c3"} {
			_, err = h.s.Attempt(h.ctx, "a@example.com", c, at(8*time.Second), lim)
			wantLimit(h.t, err, otp.LimitFailures, at(8*time.Second), end)
			_, _, err = h.issue("a@example.com", c, at(2*cooldown), lim)
			wantLimit(h.t, err, otp.LimitFailures, at(2*cooldown), end)
		}
		// When the windows end, c1 starts afresh.
		h.mustIssue("a@example.com", "c1", end, lim)
		h.mustAttempt("a@example.com", "c1", end.Add(time.Second), lim)
	}},
	{"ClientShareOfIssues", func(h *h) {
		lim := limits()
		lim.AddressIssues = 4
		lim.ClientAddressIssues = 2
		h.mustIssue("a@example.com", "c1", at(0), lim)
		h.mustIssue("a@example.com", "c1", at(cooldown), lim)
		_, _, err := h.issue("a@example.com", "c1", at(2*cooldown), lim)
		wantLimit(h.t, err, otp.LimitAddress, at(2*cooldown), at(lim.IssueWindow))
		// Others still can; c1's refused call took none of the total.
		h.mustIssue("a@example.com", "c2", at(2*cooldown), lim)
		h.mustIssue("a@example.com", "c2", at(3*cooldown), lim)
		_, _, err = h.issue("a@example.com", "c3", at(4*cooldown), lim)
		wantLimit(h.t, err, otp.LimitAddress, at(4*cooldown), at(lim.IssueWindow))
		// c1's share is per address.
		h.mustIssue("b@example.com", "c1", at(4*cooldown), lim)
	}},
	{"ConsumeRefundsClientShare", func(h *h) {
		lim := limits()
		lim.ClientFailures = 2
		lim.AddressIssues, lim.ClientAddressIssues = 50, 50
		for i := range 5 {
			now := at(time.Duration(i) * cooldown)
			p := h.mustIssue("a@example.com", "c1", now, lim)
			h.mustAttempt("a@example.com", "c1", now.Add(time.Second), lim)
			if ok, err := h.s.Consume(h.ctx, "a@example.com", "c1", p.Hash); !ok || err != nil {
				h.t.Fatalf("Consume #%d = %v, %v", i, ok, err)
			}
		}
	}},
	{"IPv6PrefixIssues", func(h *h) {
		// Each IPv6 client is also charged at its /56 and /48, each level
		// with its own cap; a bare address counts as its /64.
		lim := limits()
		lim.ClientIssues, lim.ClientIssues56, lim.ClientIssues48 = 2, 3, 4
		n := 0
		try := func(client string, now time.Time) error {
			n++
			_, _, err := h.issue(fmt.Sprintf("u%d@example.com", n), client, now, lim)
			return err
		}
		must := func(client string, now time.Time) {
			h.t.Helper()
			if err := try(client, now); err != nil {
				h.t.Fatalf("Issue from %s at +%v: %v", client, now.Sub(base), err)
			}
		}
		end := at(lim.IssueWindow) // every level's window opened at 0
		must("2001:db8:1:2::/64", at(0))
		must("2001:db8:1:2::99", at(time.Second)) // the same /64
		wantLimit(h.t, try("2001:db8:1:2::/64", at(2*time.Second)), otp.LimitClient, at(2*time.Second), end)
		must("2001:db8:1:3::/64", at(3*time.Second)) // same /56: now 3
		wantLimit(h.t, try("2001:db8:1:3::/64", at(4*time.Second)), otp.LimitClient, at(4*time.Second), end)
		must("2001:db8:1:100::/64", at(5*time.Second)) // other /56, same /48: now 4
		wantLimit(h.t, try("2001:db8:1:100::/64", at(6*time.Second)), otp.LimitClient, at(6*time.Second), end)
		wantLimit(h.t, try("2001:db8:1:ff00::1", at(6*time.Second)), otp.LimitClient, at(6*time.Second), end)
		must("2001:db8:2::/64", at(7*time.Second)) // another /48
		must("192.0.2.1", at(8*time.Second))
		must("2001:db8:1:2::/64", end)

		// When several levels refuse, RetryAt is the latest of their ends.
		lim.ClientIssues, lim.ClientIssues56, lim.ClientIssues48 = 1, 5, 2
		must("2001:db8:9:1::/64", at(0))
		must("2001:db8:9:2::/64", at(10*time.Minute)) // the /48 is full now
		late := at(10 * time.Minute).Add(lim.IssueWindow)
		wantLimit(h.t, try("2001:db8:9:2::/64", at(11*time.Minute)), otp.LimitClient, at(11*time.Minute), late)
	}},
	{"IPv6PrefixFailures", func(h *h) {
		lim := limits()
		lim.MaxAttempts, lim.FailureBudget = 10, 10
		lim.ClientFailures, lim.ClientFailures56, lim.ClientFailures48 = 2, 3, 4
		h.mustIssue("a@example.com", "192.0.2.1", at(0), lim)
		end := at(time.Second).Add(lim.FailureWindow) // every window opened at the first failure
		refused := func(client string, now time.Time) {
			h.t.Helper()
			_, err := h.s.Attempt(h.ctx, "a@example.com", client, now, lim)
			wantLimit(h.t, err, otp.LimitFailures, now, end)
		}
		h.mustAttempt("a@example.com", "2001:db8:1:2::/64", at(time.Second), lim)
		h.mustAttempt("a@example.com", "2001:db8:1:2::/64", at(2*time.Second), lim)
		refused("2001:db8:1:2::99", at(3*time.Second)) // the same /64
		h.mustAttempt("a@example.com", "2001:db8:1:3::/64", at(4*time.Second), lim)
		refused("2001:db8:1:3::/64", at(5*time.Second)) // its /56 is spent
		h.mustAttempt("a@example.com", "2001:db8:1:100::/64", at(6*time.Second), lim)
		refused("2001:db8:1:100::/64", at(7*time.Second)) // its /48 is spent
		h.mustAttempt("a@example.com", "2001:db8:2::/64", at(8*time.Second), lim)
		if p := h.mustAttempt("a@example.com", "192.0.2.1", at(9*time.Second), lim); p.Attempts != 6 {
			h.t.Fatalf("Attempts = %d, want 6: refused attempts were charged", p.Attempts)
		}
		// Issue checks the share too.
		_, _, err := h.issue("a@example.com", "2001:db8:1:4::/64", at(2*cooldown), lim)
		wantLimit(h.t, err, otp.LimitFailures, at(2*cooldown), end)
		h.mustIssue("a@example.com", "2001:db8:2::/64", at(2*cooldown), lim)
	}},
	{"ShareRetryAtIsLatest", func(h *h) {
		// When several of a client's levels are spent, RetryAt is the latest
		// of their ends: here the /64's, which opened after the /48's.
		lim := limits()
		lim.MaxAttempts, lim.FailureBudget = 10, 10
		lim.ClientFailures, lim.ClientFailures56, lim.ClientFailures48 = 2, 3, 3
		h.mustIssue("a@example.com", "192.0.2.1", at(0), lim)
		h.mustAttempt("a@example.com", "2001:db8:5:1::/64", at(time.Second), lim)
		h.mustAttempt("a@example.com", "2001:db8:5:2::/64", at(2*time.Minute), lim)
		h.mustAttempt("a@example.com", "2001:db8:5:2::/64", at(2*time.Minute+time.Second), lim)
		_, err := h.s.Attempt(h.ctx, "a@example.com", "2001:db8:5:2::/64", at(3*time.Minute), lim)
		wantLimit(h.t, err, otp.LimitFailures, at(3*time.Minute), at(2*time.Minute).Add(lim.FailureWindow))
	}},
	{"GlobalRate", func(h *h) {
		lim := limits()
		lim.GlobalIssuesPerSecond, lim.GlobalIssuesPerHour = 3, 5
		n := 0
		try := func(now time.Time) error {
			n++
			_, _, err := h.issue(fmt.Sprintf("u%d@example.com", n), fmt.Sprint("c", n), now, lim)
			return err
		}
		for i := range 3 {
			if err := try(at(time.Duration(i) * 100 * time.Millisecond)); err != nil {
				h.t.Fatal(err)
			}
		}
		wantLimit(h.t, try(at(300*time.Millisecond)), otp.LimitGlobalRate, at(300*time.Millisecond), at(time.Second))
		// A live code in its cooldown is reported whatever the rate.
		if _, res, err := h.issue("u1@example.com", "c1", at(400*time.Millisecond), lim); err != nil || res.Existing == nil {
			h.t.Fatalf("Issue in cooldown at the rate = %+v, %v; want Existing", res, err)
		}
		// A new second: two more, and then the hour's 5 are used (the
		// refused call took none).
		for _, d := range []time.Duration{time.Second, 1500 * time.Millisecond} {
			if err := try(at(d)); err != nil {
				h.t.Fatalf("Issue at +%v: %v", d, err)
			}
		}
		wantLimit(h.t, try(at(2500*time.Millisecond)), otp.LimitGlobalRate, at(2500*time.Millisecond), at(time.Hour))
		if err := try(at(time.Hour)); err != nil {
			h.t.Fatalf("Issue when the hour ends: %v", err)
		}
	}},
	{"ParallelClientShare", func(h *h) {
		lim := limits()
		lim.MaxAttempts, lim.FailureBudget, lim.ClientFailures = 10, 10, 3
		h.mustIssue("a@example.com", "c0", at(0), lim)
		ok, errs := parallel(64, func(int) error {
			_, err := h.s.Attempt(h.ctx, "a@example.com", "c1", at(time.Second), lim)
			return err
		})
		if ok != 3 || errs[limitKey(otp.LimitFailures)] != 61 {
			h.t.Fatalf("64 parallel attempts from one client: %d verdicts, errors %v; want 3", ok, errs)
		}
	}},
	{"ParallelPrefixShare", func(h *h) {
		// 64 /64s of one /48 at once: the /48's share holds, so every level
		// is checked and charged in one step.
		lim := limits()
		lim.MaxAttempts, lim.FailureBudget = 10, 10
		lim.ClientFailures, lim.ClientFailures56, lim.ClientFailures48 = 10, 10, 4
		h.mustIssue("a@example.com", "c0", at(0), lim)
		ok, errs := parallel(64, func(i int) error {
			_, err := h.s.Attempt(h.ctx, "a@example.com", fmt.Sprintf("2001:db8:7:%x::/64", i), at(time.Second), lim)
			return err
		})
		if ok != 4 || errs[limitKey(otp.LimitFailures)] != 60 {
			h.t.Fatalf("64 parallel attempts from one /48: %d verdicts, errors %v; want 4", ok, errs)
		}
	}},
	{"ParallelIssueGlobalRate", func(h *h) {
		lim := limits()
		lim.GlobalIssuesPerSecond = 10
		ok, errs := parallel(64, func(i int) error {
			_, _, err := h.issue(fmt.Sprintf("u%d@example.com", i), fmt.Sprint("c", i), at(0), lim)
			return err
		})
		if ok != 10 || errs[limitKey(otp.LimitGlobalRate)] != 54 {
			h.t.Fatalf("64 parallel Issue: %d stored, errors %v; want 10", ok, errs)
		}
	}},
}

// limitKey names a *LimitError kind in parallel's error counts.
type limitKey otp.LimitKind

// parallel runs f n times at once (released together) and returns how many
// returned nil and a count of the rest by error (*LimitError by its kind).
func parallel(n int, f func(i int) error) (ok int, errs map[any]int) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	errs = map[any]int{}
	for i := range n {
		wg.Go(func() {
			<-start
			err := f(i)
			mu.Lock()
			defer mu.Unlock()
			var le *otp.LimitError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &le):
				errs[limitKey(le.Kind)]++
			case errors.Is(err, otp.ErrTooManyAttempts):
				errs[otp.ErrTooManyAttempts]++
			default:
				errs[err.Error()]++
			}
		})
	}
	close(start)
	wg.Wait()
	return ok, errs
}
