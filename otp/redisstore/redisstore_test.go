package redisstore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otplogin/otplogin/internal/redistest"
	"github.com/otplogin/otplogin/otp"
)

// base is deliberately not on a microsecond boundary: the store must keep
// nanoseconds exact, as the memory store does.
var base = time.Date(2026, 11, 28, 12, 0, 0, 123456789, time.UTC)

var testLimits = otp.Limits{
	MaxAttempts:           3,
	FailureBudget:         5,
	FailureWindow:         time.Hour,
	ClientFailures:        5,
	ClientFailures56:      5,
	ClientFailures48:      5,
	ResendCooldown:        time.Minute,
	AddressIssues:         3,
	ClientAddressIssues:   3,
	ClientIssues:          4,
	ClientIssues56:        4,
	ClientIssues48:        4,
	IssueWindow:           time.Hour,
	GlobalIssuesPerSecond: 100,
	GlobalIssuesPerHour:   100,
	MaxPending:            100,
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open connects a store with a prefix of its own to srv.
func open(t *testing.T, srv *redistest.Server, opts Options) *Store {
	t.Helper()
	return openURL(t, srv.URL(), opts)
}

// openURL connects a store with a prefix of its own to the deployment url
// names.
func openURL(t *testing.T, url string, opts Options) *Store {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = "test:" + strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":"
	}
	if opts.Secret == nil {
		opts.Secret = sharedKey
	}
	s, err := Open(testCtx(t), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pending(hash string, at time.Time) otp.Pending {
	return otp.Pending{
		Hash:      []byte(hash),
		IssuedAt:  at,
		ExpiresAt: at.Add(5 * time.Minute),
		ResendAt:  at.Add(time.Minute),
	}
}

func wantLimit(t *testing.T, err error, kind otp.LimitKind, retry time.Time) {
	t.Helper()
	var le *otp.LimitError
	if !errors.As(err, &le) || le.Kind != kind || !le.RetryAt.Equal(retry) {
		t.Fatalf("err = %v, want %v limit until %v", err, kind, retry)
	}
}

func TestOpenErrors(t *testing.T) {
	srv := redistest.Start(t)
	port := srv.Addr()[strings.LastIndexByte(srv.Addr(), ':'):]
	srv.Stop() // a port where nothing listens

	local := "127.0.0.1" + port
	tests := []struct {
		name, url   string
		unavailable bool
		says        string
	}{
		{"scheme", "http://127.0.0.1:6379", false, "scheme"},
		{"bad port keeps password secret", "redis://user:s3cret@127.0.0.1:notaport/0", false, "invalid Redis URL"},
		{"nothing listening", "redis://user:s3cret@" + local + "/0", true, "Redis at " + local},
		{"cluster: nothing listening", "redis://user:s3cret@" + local + "?addr=" + local, true, "Redis Cluster at " + local},
		{"sentinel: nothing listening", "redis://user:s3cret@" + local + "/0?master_name=m&password=s3cret", true, `master "m" of the Sentinels at ` + local},
		// Refused before dialing: with it the password would go to anyone
		// on the path who presents a certificate.
		{"skip_verify", "rediss://user:s3cret@" + local + "/0?skip_verify=true", false, "skip_verify"},
		{"cluster: skip_verify", "rediss://user:s3cret@" + local + "?addr=" + local + "&skip_verify=true", false, "skip_verify"},
		{"sentinel: skip_verify", "rediss://user:s3cret@" + local + "/0?master_name=m&skip_verify=true", false, "skip_verify"},
		// Cleartext off loopback is refused before dialing too (these
		// documentation addresses would otherwise time out: unavailable).
		{"cleartext to a network host", "redis://user:s3cret@192.0.2.10:6379/0", false, "192.0.2.10:6379, which is not a loopback address"},
		{"cluster: cleartext to one seed", "redis://user:s3cret@" + local + "?addr=192.0.2.10:7001", false, "192.0.2.10:7001, which is not a loopback"},
		{"sentinel: cleartext to one sentinel", "redis://" + local + "/0?master_name=m&password=s3cret&addr=[2001:db8::1]:26379", false, "[2001:db8::1]:26379, which is not a loopback"},
		// Every call writes: the master it must be.
		{"sentinel: replica_only", "redis://" + local + "/0?master_name=m&replica_only=true", false, "replica_only"},
		{"sentinel: route_randomly", "redis://" + local + "/0?master_name=m&route_randomly=true", false, "route_randomly"},
	}
	t.Run("no secret", func(t *testing.T) {
		if s, err := Open(testCtx(t), "redis://127.0.0.1"+port, Options{Secret: []byte("short")}); err == nil || !strings.Contains(err.Error(), "Secret") {
			if s != nil {
				s.Close()
			}
			t.Fatalf("Open with a 5-byte secret: %v, want an error naming Secret", err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(testCtx(t), tt.url, Options{Secret: sharedKey, Timeout: time.Second})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the password: %v", err)
			}
			if got := errors.Is(err, otp.ErrUnavailable); got != tt.unavailable {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v, want %v", err, got, tt.unavailable)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v, want it to say %q", err, tt.says)
			}
		})
	}
}

func samePending(a, b otp.Pending) bool {
	return bytes.Equal(a.Hash, b.Hash) && a.IssuedAt.Equal(b.IssuedAt) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.ResendAt.Equal(b.ResendAt) && a.Attempts == b.Attempts
}

// TestNanosecondBoundaries checks the rules to the nanosecond, which plain
// Lua numbers could not: Unix nanoseconds exceed 2^53.
func TestNanosecondBoundaries(t *testing.T) {
	s := open(t, redistest.Start(t), Options{})
	ctx := testCtx(t)
	const addr = "bob@example.com"
	p := pending("h", base)
	if _, err := s.Issue(ctx, addr, "c", p, base, testLimits); err != nil {
		t.Fatal(err)
	}
	res, err := s.Issue(ctx, addr, "c", pending("h2", base), p.ResendAt.Add(-time.Nanosecond), testLimits)
	if err != nil || res.Existing == nil || !samePending(*res.Existing, p) {
		t.Fatalf("Issue 1ns before ResendAt = %+v, %v; want Existing %+v", res.Existing, err, p)
	}
	if _, err := s.Attempt(ctx, addr, "c", p.ExpiresAt.Add(-time.Nanosecond), testLimits); err != nil {
		t.Fatalf("Attempt 1ns before expiry: %v", err)
	}
	if _, err := s.Attempt(ctx, addr, "c", p.ExpiresAt, testLimits); !errors.Is(err, otp.ErrExpired) {
		t.Fatalf("Attempt at expiry: %v, want ErrExpired", err)
	}
}

func issue(t *testing.T, s *Store, addr, client string, at time.Time) {
	t.Helper()
	res, err := s.Issue(testCtx(t), addr, client, pending("h", at), at, testLimits)
	if err != nil || res.Existing != nil {
		t.Fatalf("Issue(%s, %s) = %+v, %v", addr, client, res, err)
	}
}

// TestGlobalCapFreesAtExpiry: a code stops counting against MaxPending at
// its exact expiry, not a second or a microsecond later.
func TestGlobalCapFreesAtExpiry(t *testing.T) {
	s := open(t, redistest.Start(t), Options{})
	lim := testLimits
	lim.MaxPending = 1
	p := pending("x", base)
	if _, err := s.Issue(testCtx(t), "a@example.com", "c", p, base, lim); err != nil {
		t.Fatal(err)
	}
	_, err := s.Issue(testCtx(t), "b@example.com", "c", pending("y", base), p.ExpiresAt.Add(-time.Nanosecond), lim)
	wantLimit(t, err, otp.LimitBusy, p.ExpiresAt)
	if _, err := s.Issue(testCtx(t), "b@example.com", "c", pending("y", p.ExpiresAt), p.ExpiresAt, lim); err != nil {
		t.Fatalf("Issue at the other code's expiry: %v", err)
	}
}

// TestKeys checks what a dump of the database shows: no address or client
// in key names, every name under the prefix as a hash tag, and an expiry
// on every key but the shared index.
func TestKeys(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{Prefix: "keys:"})
	const addr, client = "erin@example.com", "192.0.2.7"
	issue(t, s, addr, client, base)
	if _, err := s.Attempt(testCtx(t), addr, client, base, testLimits); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	keys, err := rdb.Keys(testCtx(t), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 9 {
		t.Errorf("keys = %q, want the code, the index, the global rate's two counters, and failures and issues for the address and for the client's share of it, and the client's issues", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{keys:}") || strings.Contains(k, "erin") || strings.Contains(k, client) {
			t.Errorf("key %q: want the prefix and no address or client", k)
		}
		ttl, err := rdb.PTTL(testCtx(t), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if k == "{keys:}pending" {
			continue
		}
		// The code matters until its expiry, 5 minutes; counters for an hour.
		if ttl <= 0 || ttl > time.Hour+gcSlack {
			t.Errorf("key %q expires in %v, want (0, %v]", k, ttl, time.Hour+gcSlack)
		}
	}
}

// TestNoScript: after SCRIPT FLUSH (a Redis restart or failover does the
// same) the store loads its scripts again by itself.
func TestNoScript(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{})
	issue(t, s, "f@example.com", "c", base)
	if err := s.rdb.ScriptFlush(testCtx(t)).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Attempt(testCtx(t), "f@example.com", "c", base, testLimits); err != nil {
		t.Fatalf("Attempt after SCRIPT FLUSH: %v", err)
	}
}

// TestSecretNamesKeys: stores with different secrets on one prefix name the
// same address differently, so neither sees the other's code.
func TestSecretNamesKeys(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, srv, Options{Prefix: "same:", Secret: []byte("0123456789abcdef-a")})
	b := open(t, srv, Options{Prefix: "same:", Secret: []byte("0123456789abcdef-b")})
	issue(t, a, "frank@example.com", "192.0.2.8", base)
	if _, err := b.Attempt(testCtx(t), "frank@example.com", "c", base, testLimits); !errors.Is(err, otp.ErrNoCode) {
		t.Fatalf("other secret: %v, want ErrNoCode", err)
	}
	if _, err := a.Attempt(testCtx(t), "frank@example.com", "c", base, testLimits); err != nil {
		t.Fatalf("same secret: %v", err)
	}
}
