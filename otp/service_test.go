package otp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otplogin/otplogin/otp"
)

func TestRequestSendsCode(t *testing.T) {
	for _, length := range []int{6, 8, 10} {
		t.Run(fmt.Sprint(length), func(t *testing.T) {
			e := newEnv(t, func(c *otp.Config) { c.CodeLength = length })
			now := e.clock.Now()
			tk, code := e.request(t, "  Alice@Example.COM\t")
			want := otp.Ticket{Address: "Alice@example.com", SentAt: now, ExpiresAt: now.Add(5 * time.Minute), ResendAt: now.Add(time.Minute)}
			sameTicket(t, tk, want)
			msg := e.send.last(t)
			if msg.To != "Alice@example.com" || !msg.ExpiresAt.Equal(tk.ExpiresAt) {
				t.Fatalf("sent %+v", msg)
			}
			if _, err := otp.ParseCode(code, length); err != nil || e.svc.CodeLength() != length {
				t.Fatalf("sent code %q of length %d, CodeLength %d: %v", code, len(code), e.svc.CodeLength(), err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	space := func(c string) string { return c[:3] + " " + c[3:] }
	dash := func(c string) string { return c[:3] + "-" + c[3:] }
	for _, tc := range []struct {
		name    string
		advance time.Duration
		addr    string                   // "" means the requested address
		code    func(sent string) string // what the user types
		want    error                    // matched with errors.Is, nil for verified
		left    int                      // for *WrongCodeError
	}{
		{name: "right", code: func(c string) string { return c }},
		{name: "spaced", code: space},
		{name: "dashed", code: dash},
		{name: "padded", code: func(c string) string { return " " + space(c) + "\n" }},
		{name: "address case", addr: "ALICE@EXAMPLE.COM", code: func(c string) string { return c }},
		{name: "just before expiry", advance: 5*time.Minute - time.Millisecond, code: func(c string) string { return c }},
		{name: "wrong", code: wrong, want: &otp.WrongCodeError{}, left: 4},
		{name: "expired", advance: 5 * time.Minute, code: func(c string) string { return c }, want: otp.ErrExpired},
		{name: "no code", addr: "bob@example.com", code: func(c string) string { return c }, want: otp.ErrNoCode},
		{name: "too short", code: func(c string) string { return c[1:] }, want: otp.ErrInvalidCode},
		{name: "letters", code: func(c string) string { return "abc" + c[3:] }, want: otp.ErrInvalidCode},
		{name: "arabic-indic digits", code: func(string) string { return "١٢٣٤٥٦" }, want: otp.ErrInvalidCode},
		{name: "bad address", addr: "Alice <alice@example.com>", code: func(c string) string { return c }, want: otp.ErrInvalidAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			_, sent := e.request(t, "alice@example.com")
			e.clock.Advance(tc.advance)
			addr := tc.addr
			if addr == "" {
				addr = "alice@example.com"
			}
			err := e.svc.Verify(t.Context(), addr, "client", tc.code(sent))
			var wce *otp.WrongCodeError
			switch {
			case tc.want == nil:
				if err != nil {
					t.Fatalf("Verify = %v, want verified", err)
				}
				// Single use.
				if err := e.svc.Verify(t.Context(), addr, "client", sent); !errors.Is(err, otp.ErrNoCode) {
					t.Fatalf("second Verify = %v, want ErrNoCode", err)
				}
			case errors.As(tc.want, &wce):
				if !errors.As(err, &wce) || wce.AttemptsLeft != tc.left {
					t.Fatalf("Verify = %v, want WrongCodeError{%d}", err, tc.left)
				}
			case !errors.Is(err, tc.want):
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if errors.Is(tc.want, otp.ErrInvalidCode) || errors.Is(tc.want, otp.ErrInvalidAddress) {
				// Nothing was charged: the right code still works after 4 misses.
				for range 4 {
					_ = e.svc.Verify(t.Context(), "alice@example.com", "client", wrong(sent))
				}
				if err := e.svc.Verify(t.Context(), "alice@example.com", "client", sent); err != nil {
					t.Fatalf("Verify after bad input and 4 misses = %v, want verified", err)
				}
			}
		})
	}
}

func TestCodeErrorText(t *testing.T) {
	e := newEnv(t, nil)
	err := e.svc.Verify(t.Context(), "alice@example.com", "client", "12345")
	if err == nil || err.Error() != "code must be 6 digits" {
		t.Fatalf("Verify(12345) = %v, want %q", err, "code must be 6 digits")
	}
}

func TestLastAttemptKillsCode(t *testing.T) {
	e := newEnv(t, nil)
	tk, sent := e.request(t, "alice@example.com")
	for left := 4; left >= 0; left-- {
		err := e.svc.Verify(t.Context(), "alice@example.com", "client", wrong(sent))
		var wce *otp.WrongCodeError
		if !errors.As(err, &wce) || wce.AttemptsLeft != left {
			t.Fatalf("miss = %v, want WrongCodeError{%d}", err, left)
		}
		if dead := errors.Is(err, otp.ErrTooManyAttempts); dead != (left == 0) {
			t.Fatalf("miss with %d left: errors.Is(ErrTooManyAttempts) = %v", left, dead)
		}
	}
	// Dead: even the right code is refused, and no further attempt counts.
	if err := e.svc.Verify(t.Context(), "alice@example.com", "client", sent); !errors.Is(err, otp.ErrTooManyAttempts) {
		t.Fatalf("right code after 5 misses = %v, want ErrTooManyAttempts", err)
	}
	// Not a dead end: a new code may be requested when the cooldown ends.
	_, err := e.svc.Request(t.Context(), "alice@example.com", "client")
	wantLimit(t, err, otp.LimitResend, tk.ResendAt)
	e.clock.Advance(time.Minute)
	_, fresh := e.request(t, "alice@example.com")
	if err := e.svc.Verify(t.Context(), "alice@example.com", "client", fresh); err != nil {
		t.Fatalf("new code = %v", err)
	}
}

func TestFailureBudgetSurvivesResend(t *testing.T) {
	e := newEnv(t, nil) // 5 per code, 10 per hour
	start := e.clock.Now()
	for code := range 2 {
		_, sent := e.request(t, "alice@example.com")
		for range 5 {
			_ = e.svc.Verify(t.Context(), "alice@example.com", "client", wrong(sent))
		}
		if code == 0 {
			e.clock.Advance(time.Minute)
		}
	}
	windowEnd := start.Add(time.Hour) // opened by the first miss
	_, err := e.svc.Request(t.Context(), "alice@example.com", "client")
	wantLimit(t, err, otp.LimitFailures, windowEnd)

	e.clock.Advance(time.Hour)
	_, sent := e.request(t, "alice@example.com")
	if err := e.svc.Verify(t.Context(), "alice@example.com", "client", sent); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestFailureBudgetStopsVerify(t *testing.T) {
	e := newEnv(t, func(c *otp.Config) { c.Limits.FailureBudget = 7 })
	start := e.clock.Now()
	_, sent := e.request(t, "alice@example.com")
	for range 5 {
		_ = e.svc.Verify(t.Context(), "alice@example.com", "client", wrong(sent))
	}
	e.clock.Advance(time.Minute)
	_, sent = e.request(t, "alice@example.com")
	for range 2 {
		_ = e.svc.Verify(t.Context(), "alice@example.com", "client", wrong(sent))
	}
	// Budget spent: even the right code gets no verdict until the window ends.
	err := e.svc.Verify(t.Context(), "alice@example.com", "client", sent)
	wantLimit(t, err, otp.LimitFailures, start.Add(time.Hour))
}

func TestVerifiedCodeRefundsFailure(t *testing.T) {
	e := newEnv(t, func(c *otp.Config) {
		c.Limits.FailureBudget, c.Limits.AddressIssues, c.Limits.ClientAddressIssues = 2, 20, 20
	})
	for i := range 6 {
		_, sent := e.request(t, "alice@example.com")
		if err := e.svc.Verify(t.Context(), "alice@example.com", "client", sent); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		e.clock.Advance(time.Second)
	}
}

func TestRequestAgainInCooldown(t *testing.T) {
	e := newEnv(t, nil)
	first, sent := e.request(t, "alice@example.com")
	e.clock.Advance(30 * time.Second)
	tk, err := e.svc.Request(t.Context(), "ALICE@example.com", "other-client")
	if err != nil {
		t.Fatal(err)
	}
	want := first
	want.Address = "ALICE@example.com"
	want.AlreadySent = true
	sameTicket(t, tk, want)
	if n := e.send.count(); n != 1 {
		t.Fatalf("%d messages sent, want 1", n)
	}
	if err := e.svc.Verify(t.Context(), "alice@example.com", "client", sent); err != nil {
		t.Fatalf("first code after AlreadySent: %v", err)
	}
}

func TestResendReplacesCode(t *testing.T) {
	e := newEnv(t, nil)
	_, old := e.request(t, "alice@example.com")
	e.clock.Advance(time.Minute)
	_, fresh := e.request(t, "alice@example.com")
	if old == fresh {
		t.Skip("the two random codes collided (p = 1e-6)")
	}
	var wce *otp.WrongCodeError
	if err := e.svc.Verify(t.Context(), "alice@example.com", "client", old); !errors.As(err, &wce) {
		t.Fatalf("replaced code = %v, want WrongCodeError", err)
	}
	if err := e.svc.Verify(t.Context(), "alice@example.com", "client", fresh); err != nil {
		t.Fatalf("new code = %v", err)
	}
}

func TestRequestLimits(t *testing.T) {
	t.Run("address", func(t *testing.T) {
		// One client gets its share (3), all clients together the total (10).
		e := newEnv(t, nil)
		start := e.clock.Now()
		for range 3 {
			e.request(t, "alice@example.com")
			e.clock.Advance(time.Minute)
		}
		_, err := e.svc.Request(t.Context(), "alice@example.com", "client")
		wantLimit(t, err, otp.LimitAddress, start.Add(time.Hour))
		for i := range 7 {
			if _, err := e.svc.Request(t.Context(), "alice@example.com", fmt.Sprint("other", i/3)); err != nil {
				t.Fatalf("code %d for alice from another client: %v", 4+i, err)
			}
			e.clock.Advance(time.Minute)
		}
		_, err = e.svc.Request(t.Context(), "alice@example.com", "fresh")
		wantLimit(t, err, otp.LimitAddress, start.Add(time.Hour))
		if n := e.send.count(); n != 10 {
			t.Fatalf("%d codes sent, want 10", n)
		}
	})
	t.Run("client", func(t *testing.T) {
		e := newEnv(t, nil)
		start := e.clock.Now()
		for i := range 20 {
			e.request(t, fmt.Sprintf("u%d@example.com", i))
		}
		_, err := e.svc.Request(t.Context(), "late@example.com", "client")
		wantLimit(t, err, otp.LimitClient, start.Add(time.Hour))
		if _, err := e.svc.Request(t.Context(), "late@example.com", "another"); err != nil {
			t.Fatalf("another client: %v", err)
		}
	})
	t.Run("busy", func(t *testing.T) {
		e := newEnv(t, func(c *otp.Config) { c.Limits.MaxPending = 2 })
		first, _ := e.request(t, "a@example.com")
		e.request(t, "b@example.com")
		_, err := e.svc.Request(t.Context(), "c@example.com", "client")
		wantLimit(t, err, otp.LimitBusy, first.ExpiresAt)
		if n := e.send.count(); n != 2 {
			t.Fatalf("%d sent, want 2", n)
		}
		e.clock.Advance(5 * time.Minute)
		e.request(t, "c@example.com")
	})
}

func TestDelivery(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		maybeSent bool // the code is kept
		rejected  bool
	}{
		{name: "ambiguous", err: ambiguousErr{}, maybeSent: true},
		{name: "ambiguous wrapped", err: fmt.Errorf("send: %w", ambiguousErr{}), maybeSent: true},
		{name: "rejected", err: fmt.Errorf("send: %w", rejectedErr{}), rejected: true},
		{name: "transient", err: errTransient},
		{name: "cancelled", err: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			e := newEnv(t, func(c *otp.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
			e.send.fail(tc.err)
			tk, err := e.svc.Request(t.Context(), "alice@example.com", "client")
			code := e.send.last(t).Code
			if tc.maybeSent {
				if err != nil || !tk.MaybeSent || tk.AlreadySent || tk.ExpiresAt.IsZero() {
					t.Fatalf("Request = %+v, %v; want MaybeSent ticket, nil", tk, err)
				}
				if err := e.svc.Verify(t.Context(), "alice@example.com", "client", code); err != nil {
					t.Fatalf("kept code: %v", err)
				}
			} else {
				var de *otp.DeliveryError
				if !errors.As(err, &de) || !errors.Is(err, otp.ErrDelivery) || !errors.Is(err, tc.err) ||
					de.AddressRejected != tc.rejected || tk != (otp.Ticket{}) {
					t.Fatalf("Request = %+v, %v; want *DeliveryError{AddressRejected: %v}", tk, err, tc.rejected)
				}
				if err := e.svc.Verify(t.Context(), "alice@example.com", "client", code); !errors.Is(err, otp.ErrNoCode) {
					t.Fatalf("discarded code: %v, want ErrNoCode", err)
				}
				// Nothing to wait for: a retry sends at once.
				e.send.fail(nil)
				e.request(t, "alice@example.com")
			}
			log := logs.String()
			if !strings.Contains(log, "a***@example.com") || strings.Contains(log, "alice@") || strings.Contains(log, code) {
				t.Fatalf("operator log must mask the address and omit the code:\n%s", log)
			}
		})
	}
}

// blockingSender waits for its context, as a stalled SMTP session would.
type blockingSender struct{ started chan struct{} }

func (b blockingSender) SendCode(ctx context.Context, _, _ string, _ time.Time) error {
	close(b.started)
	<-ctx.Done()
	return ctx.Err()
}

func TestCloseCancelsDelivery(t *testing.T) {
	snd := blockingSender{started: make(chan struct{})}
	svc, err := otp.New(otp.Config{}, otp.NewMemoryStore(), snd)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := svc.Request(t.Context(), "alice@example.com", "client")
		done <- err
	}()
	<-snd.started
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, otp.ErrDelivery) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Request during Close = %v, want DeliveryError(context.Canceled)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not cancel the delivery")
	}
	if _, err := svc.Request(t.Context(), "alice@example.com", "client"); !errors.Is(err, otp.ErrUnavailable) {
		t.Fatalf("Request after Close = %v, want ErrUnavailable", err)
	}
	if err := svc.Verify(t.Context(), "alice@example.com", "client", "123456"); !errors.Is(err, otp.ErrUnavailable) {
		t.Fatalf("Verify after Close = %v, want ErrUnavailable", err)
	}
}

func TestParallelGuesses(t *testing.T) {
	e := newEnv(t, nil)
	_, sent := e.request(t, "alice@example.com")
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		misses  []int
		refused int
	)
	start := make(chan struct{})
	for range 64 {
		wg.Go(func() {
			<-start
			err := e.svc.Verify(context.Background(), "alice@example.com", "client", wrong(sent))
			mu.Lock()
			defer mu.Unlock()
			var wce *otp.WrongCodeError
			switch {
			case errors.As(err, &wce):
				misses = append(misses, wce.AttemptsLeft)
			case errors.Is(err, otp.ErrTooManyAttempts):
				refused++
			default:
				t.Errorf("Verify = %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	seen := map[int]bool{}
	for _, left := range misses {
		seen[left] = true
	}
	if len(misses) != 5 || len(seen) != 5 || refused != 59 {
		t.Fatalf("64 parallel guesses: verdicts %v, refused %d; want 5 distinct verdicts 4..0, 59 refused", misses, refused)
	}
}

func TestParallelRightCode(t *testing.T) {
	e := newEnv(t, nil)
	_, sent := e.request(t, "alice@example.com")
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		won int
	)
	start := make(chan struct{})
	for range 32 {
		wg.Go(func() {
			<-start
			err := e.svc.Verify(context.Background(), "alice@example.com", "client", sent)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, otp.ErrNoCode), errors.Is(err, otp.ErrTooManyAttempts):
			default:
				t.Errorf("Verify = %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d of 32 parallel right submissions verified, want exactly 1", won)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*otp.Config)
		want string // in the error
	}{
		{"short key", func(c *otp.Config) { c.Key = []byte("short") }, "Key"},
		{"code 5", func(c *otp.Config) { c.CodeLength = 5 }, "CodeLength"},
		{"code 11", func(c *otp.Config) { c.CodeLength = 11 }, "CodeLength"},
		{"ttl 10s", func(c *otp.Config) { c.TTL = 10 * time.Second }, "TTL"},
		{"ttl 2h", func(c *otp.Config) { c.TTL = 2 * time.Hour }, "TTL"},
		{"attempts", func(c *otp.Config) { c.Limits.MaxAttempts = -1 }, "MaxAttempts"},
		{"attempts 50", func(c *otp.Config) { c.Limits.MaxAttempts = 50 }, "MaxAttempts"},
		{"budget", func(c *otp.Config) { c.Limits.FailureBudget = 1000 }, "FailureBudget"},
		// 100 a minute is 144,000 guesses a day: a 6-digit code falls in a week.
		{"budget rate", func(c *otp.Config) { c.Limits.FailureBudget, c.Limits.FailureWindow = 100, time.Minute }, "FailureBudget"},
		{"cooldown over ttl", func(c *otp.Config) { c.TTL = time.Minute; c.Limits.ResendCooldown = 2 * time.Minute }, "ResendCooldown"},
		{"window", func(c *otp.Config) { c.Limits.IssueWindow = time.Second }, "IssueWindow"},
		{"pending", func(c *otp.Config) { c.Limits.MaxPending = -5 }, "MaxPending"},
		// A client's share cannot exceed the total it is a share of.
		{"client failures", func(c *otp.Config) { c.Limits.FailureBudget, c.Limits.ClientFailures = 5, 6 }, "ClientFailures"},
		{"client failures /48", func(c *otp.Config) { c.Limits.ClientFailures48 = 101 }, "ClientFailures48"},
		{"client failures /56", func(c *otp.Config) { c.Limits.ClientFailures56 = -1 }, "ClientFailures56"},
		{"client share of codes", func(c *otp.Config) { c.Limits.AddressIssues, c.Limits.ClientAddressIssues = 2, 3 }, "ClientAddressIssues"},
		{"prefix codes", func(c *otp.Config) { c.Limits.ClientIssues48 = 2_000_000 }, "ClientIssues48"},
		{"rate", func(c *otp.Config) { c.Limits.GlobalIssuesPerSecond = -1 }, "GlobalIssuesPerSecond"},
		{"hourly rate", func(c *otp.Config) { c.Limits.GlobalIssuesPerHour = 1_000_000_000 }, "GlobalIssuesPerHour"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := otp.Config{}
			tc.edit(&cfg)
			_, err := otp.New(cfg, otp.NewMemoryStore(), &recorder{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if _, err := otp.New(otp.Config{}, nil, &recorder{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
	svc, err := otp.New(otp.Config{TTL: time.Minute}, otp.NewMemoryStore(), &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	want := otp.DefaultLimits()
	if svc.Limits() != want || svc.TTL() != time.Minute || svc.CodeLength() != 6 {
		t.Fatalf("defaults: %+v, %v, %d", svc.Limits(), svc.TTL(), svc.CodeLength())
	}
}

// TestDerivedDefaults: caps that default to a share or a multiple of
// another field follow that field.
func TestDerivedDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		set, want otp.Limits
	}{
		{"small totals", otp.Limits{FailureBudget: 5, AddressIssues: 2},
			otp.Limits{ClientFailures: 5, ClientFailures56: 5, ClientFailures48: 5, ClientAddressIssues: 2, ClientIssues56: 50, ClientIssues48: 100}},
		{"client caps", otp.Limits{ClientFailures: 4, ClientIssues: 40},
			otp.Limits{ClientFailures: 4, ClientFailures56: 4, ClientFailures48: 4, ClientAddressIssues: 3, ClientIssues56: 100, ClientIssues48: 200}},
		{"one code", otp.Limits{ClientIssues: 1},
			otp.Limits{ClientFailures: 10, ClientFailures56: 10, ClientFailures48: 10, ClientAddressIssues: 3, ClientIssues56: 2, ClientIssues48: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, err := otp.New(otp.Config{Limits: tc.set}, otp.NewMemoryStore(), &recorder{})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			got := svc.Limits()
			if got.ClientFailures != tc.want.ClientFailures || got.ClientFailures56 != tc.want.ClientFailures56 ||
				got.ClientFailures48 != tc.want.ClientFailures48 || got.ClientAddressIssues != tc.want.ClientAddressIssues ||
				got.ClientIssues56 != tc.want.ClientIssues56 || got.ClientIssues48 != tc.want.ClientIssues48 {
				t.Fatalf("limits %+v\nwant shares and prefix caps of %+v", got, tc.want)
			}
		})
	}
}

func TestKeyMatters(t *testing.T) {
	// Two services with different keys over one store: a code issued by one
	// does not verify in the other, so the store alone reveals nothing.
	clk, store, snd := newClock(), otp.NewMemoryStore(), &recorder{}
	a, _ := otp.New(otp.Config{Key: bytes.Repeat([]byte{1}, 32), Now: clk.Now}, store, snd)
	b, _ := otp.New(otp.Config{Key: bytes.Repeat([]byte{2}, 32), Now: clk.Now}, store, snd)
	if _, err := a.Request(t.Context(), "alice@example.com", "c"); err != nil {
		t.Fatal(err)
	}
	var wce *otp.WrongCodeError
	if err := b.Verify(t.Context(), "alice@example.com", "client", snd.last(t).Code); !errors.As(err, &wce) {
		t.Fatalf("other key: %v, want WrongCodeError", err)
	}
}

// brokenStore fails every call the way a store whose backend is gone might
// if it forgot to wrap ErrUnavailable; the memory store cannot fail, so a
// stand-in is the only way to exercise the Service's guard.
type brokenStore struct{}

var errBackend = errors.New("read tcp 10.0.0.1:6379: connection reset by peer")

func (brokenStore) Issue(context.Context, string, string, otp.Pending, time.Time, otp.Limits) (otp.IssueResult, error) {
	return otp.IssueResult{}, errBackend
}
func (brokenStore) Attempt(context.Context, string, string, time.Time, otp.Limits) (otp.Pending, error) {
	return otp.Pending{}, errBackend
}
func (brokenStore) Consume(context.Context, string, string, []byte) (bool, error) {
	return false, errBackend
}
func (brokenStore) Discard(context.Context, string, []byte) error { return errBackend }

func TestStoreFailureIsUnavailable(t *testing.T) {
	svc, err := otp.New(otp.Config{}, brokenStore{}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if _, err := svc.Request(t.Context(), "alice@example.com", "c"); !errors.Is(err, otp.ErrUnavailable) || !errors.Is(err, errBackend) {
		t.Fatalf("Request = %v, want ErrUnavailable wrapping the cause", err)
	}
	if err := svc.Verify(t.Context(), "alice@example.com", "client", "123456"); !errors.Is(err, otp.ErrUnavailable) {
		t.Fatalf("Verify = %v, want ErrUnavailable", err)
	}
}
