package redisstore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otplogin/otplogin/internal/fakeclock"
	"github.com/otplogin/otplogin/internal/leakcheck"
	"github.com/otplogin/otplogin/internal/redistest"
	"github.com/otplogin/otplogin/otp"
)

// faultTimeout is the store timeout in these tests; every wait on the test
// side is far longer, so a store that ignored its timeout would hit the
// test's context instead and fail the assertions below.
const faultTimeout = 300 * time.Millisecond

// stall is how long a paused Redis answers nothing: long enough that every
// call in these tests meets the store timeout (or the pool timeout) first.
const stall = 2 * time.Second

// wantUnavailable fails unless err is the store's own timeout or failure,
// reported while the caller's context was still alive.
func wantUnavailable(t *testing.T, ctx context.Context, err error, says string) {
	t.Helper()
	if !errors.Is(err, otp.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the caller's context ended first (%v): the store timeout was not honoured", ctx.Err())
	}
	if !strings.Contains(err.Error(), says) {
		t.Errorf("err = %q, want it to say %q", err, says)
	}
}

// TestRedisRestart: with Redis down, calls fail fast with ErrUnavailable;
// when it is back on the same address the service works again by itself.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	r := newReplicasWith(t, srv, Options{Timeout: faultTimeout})
	const addr = "alice@example.com"
	if _, err := r.a.Request(testCtx(t), addr, "c"); err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	ctx := testCtx(t)
	err := r.a.Verify(ctx, addr, "c", r.mail.code(t, addr))
	wantUnavailable(t, ctx, err, "connection refused")
	_, err = r.b.Request(ctx, addr, "c")
	wantUnavailable(t, ctx, err, "connection refused")

	// The restarted server has lost every code (no persistence): a user
	// asks again and it works, with no reconnect step in between.
	srv.Restart()
	if err := r.a.Verify(testCtx(t), addr, "c", r.mail.code(t, addr)); !errors.Is(err, otp.ErrNoCode) {
		t.Fatalf("Verify after restart: %v, want ErrNoCode", err)
	}
	if _, err := r.b.Request(testCtx(t), addr, "c"); err != nil {
		t.Fatalf("Request after restart: %v", err)
	}
	if err := r.a.Verify(testCtx(t), addr, "c", r.mail.code(t, addr)); err != nil {
		t.Fatalf("Verify after restart: %v", err)
	}
}

// pause stalls every client of srv for d, as an overloaded Redis would,
// and returns a function that waits until the server answers again. (The
// pause cannot be lifted early: Redis 7.0 stalls CLIENT UNPAUSE too.)
func pause(t *testing.T, srv *redistest.Server, d time.Duration) (wait func()) {
	t.Helper()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: d + 5*time.Second})
	t.Cleanup(func() { admin.Close() })
	if err := admin.ClientPause(testCtx(t), d).Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	return func() {
		t.Helper()
		if err := admin.Ping(testCtx(t)).Err(); err != nil {
			t.Fatalf("PING after the pause: %v", err)
		}
	}
}

// TestRedisStalled: a Redis that accepts commands but does not answer
// makes each call fail at the store's timeout; when it answers again, so
// does the store.
func TestRedisStalled(t *testing.T) {
	srv := redistest.Start(t)
	r := newReplicasWith(t, srv, Options{Timeout: faultTimeout})
	const addr = "bob@example.com"
	if _, err := r.a.Request(testCtx(t), addr, "c"); err != nil {
		t.Fatal(err)
	}

	resume := pause(t, srv, stall)
	ctx := testCtx(t)
	err := r.a.Verify(ctx, addr, "c", r.mail.code(t, addr))
	wantUnavailable(t, ctx, err, "no reply within "+faultTimeout.String())
	resume()

	if err := r.b.Verify(testCtx(t), addr, "c", r.mail.code(t, addr)); err != nil {
		t.Fatalf("Verify after the stall: %v", err)
	}
}

// TestNoPileUp: a burst of calls against a stalled Redis all fail within
// the timeout, open no more connections than the pool allows, and leave no
// goroutines behind.
func TestNoPileUp(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{Timeout: faultTimeout})
	issue(t, s, "carol@example.com", "c", base) // connections warmed up
	leakcheck.Check(t)

	resume := pause(t, srv, stall)
	const calls = 200
	var wg sync.WaitGroup
	errs := make(chan error, calls)
	ctx := testCtx(t)
	for range calls {
		wg.Go(func() {
			_, err := s.Attempt(ctx, "carol@example.com", "c", base, testLimits)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, otp.ErrUnavailable) {
			t.Fatalf("call against a stalled Redis: %v, want ErrUnavailable", err)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the burst outlived the test context: calls waited past the store timeout")
	}
	if st := s.rdb.PoolStats(); int(st.TotalConns) > s.rdb.Options().PoolSize {
		t.Errorf("pool holds %d connections, more than PoolSize %d", st.TotalConns, s.rdb.Options().PoolSize)
	}
	resume()

	if _, err := s.Attempt(testCtx(t), "carol@example.com", "c", base, testLimits); err != nil {
		t.Fatalf("Attempt after the stall: %v", err)
	}
}

func newReplicasWith(t *testing.T, srv *redistest.Server, opts Options) replicas {
	t.Helper()
	r := replicas{clock: fakeclock.New(base), mail: &recorder{}}
	opts.Prefix = "fault:" + t.Name() + ":"
	svc := func() *otp.Service {
		s, err := otp.New(otp.Config{Key: sharedKey, Now: r.clock.Now}, open(t, srv, opts), r.mail)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	r.a, r.b = svc(), svc()
	return r
}
