package redisstore

import (
	"context"
	"errors"
	"strconv"
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
	if st := s.rdb.PoolStats(); int(st.TotalConns) > s.rdb.(*redis.Client).Options().PoolSize {
		t.Errorf("pool holds %d connections, more than PoolSize %d", st.TotalConns, s.rdb.(*redis.Client).Options().PoolSize)
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

// frozen runs call against srv frozen with SIGSTOP, as a Redis stalled by
// the kernel or a slow fork would be: the command reaches the server's
// socket but runs only after Thaw, when the caller has long given up. It
// returns once the server has run every command that queued meanwhile.
func frozen(t *testing.T, srv *redistest.Server, call func(ctx context.Context) error) {
	t.Helper()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { admin.Close() })
	before := scriptCalls(t, admin)

	srv.Freeze()
	ctx := testCtx(t)
	err := call(ctx)
	srv.Thaw()
	wantUnavailable(t, ctx, err, "")

	// The admin connection's own commands are not ordered with the frozen
	// one's, so wait for the script to be counted instead.
	deadline := time.Now().Add(5 * time.Second)
	for scriptCalls(t, admin) == before {
		if time.Now().After(deadline) {
			t.Fatal("the script sent to the frozen server never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// warm runs every script once, so the server has them all loaded when it
// is frozen: a late EVALSHA of an unknown script would fail with NOSCRIPT
// and prove nothing.
func warm(t *testing.T, s *Store) {
	t.Helper()
	const addr = "warm@example.com"
	issue(t, s, addr, "warm", base)
	if _, err := s.Attempt(testCtx(t), addr, "c", base, testLimits); err != nil {
		t.Fatal(err)
	}
	if err := s.Discard(testCtx(t), addr, []byte("h")); err != nil {
		t.Fatal(err)
	}
}

// scriptCalls is how many scripts the server has run (EVAL and EVALSHA,
// failed ones included).
func scriptCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(testCtx(t), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(info, "\r\n") {
		for _, cmd := range []string{"cmdstat_eval:", "cmdstat_evalsha:"} {
			if rest, ok := strings.CutPrefix(line, cmd+"calls="); ok {
				c, _, _ := strings.Cut(rest, ",")
				v, err := strconv.Atoi(c)
				if err != nil {
					t.Fatalf("commandstats line %q: %v", line, err)
				}
				n += v
			}
		}
	}
	return n
}

// TestNoEffectAfterTimeout: a call that timed out while Redis was stalled
// does nothing when Redis runs it later. Before scripts checked a deadline,
// a Request left a code that was never mailed, spent an issue slot, and
// made the retry answer "already sent".
func TestNoEffectAfterTimeout(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	exists := func(t *testing.T, key string) bool {
		t.Helper()
		n, err := rdb.Exists(testCtx(t), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	t.Run("request", func(t *testing.T) {
		lim := otp.DefaultLimits()
		lim.AddressIssues, lim.ClientAddressIssues = 1, 1 // a spent slot would refuse the retry
		store := open(t, srv, Options{Timeout: faultTimeout})
		mail := &recorder{}
		svc, err := otp.New(otp.Config{Key: sharedKey, Limits: lim}, store, mail)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		const addr, client = "dave@example.com", "192.0.2.9"
		warm(t, store)

		frozen(t, srv, func(ctx context.Context) error {
			_, err := svc.Request(ctx, addr, client)
			return err
		})
		if mail.sent != 0 {
			t.Fatalf("%d mails sent by a Request that failed", mail.sent)
		}
		if err := svc.Verify(testCtx(t), addr, "c", "123456"); !errors.Is(err, otp.ErrNoCode) {
			t.Errorf("Verify after the stall: %v, want ErrNoCode (an orphan code was stored)", err)
		}
		id := store.names.name('a', addr)
		if exists(t, store.key("issues:addr:", id)) || exists(t, store.key("issues:client:", store.names.name('c', client))) {
			t.Error("the timed-out Request spent an issue slot")
		}
		tk, err := svc.Request(testCtx(t), addr, client)
		if err != nil || tk.AlreadySent || mail.sent != 1 {
			t.Fatalf("retry after the stall = %+v, %v with %d sent; want a new code sent", tk, err, mail.sent)
		}
		if err := svc.Verify(testCtx(t), addr, "c", mail.code(t, addr)); err != nil {
			t.Fatalf("Verify of the retry's code: %v", err)
		}
	})

	t.Run("attempt", func(t *testing.T) {
		store := open(t, srv, Options{Timeout: faultTimeout})
		const addr = "erin@example.com"
		warm(t, store)
		issue(t, store, addr, "c", base)
		frozen(t, srv, func(ctx context.Context) error {
			_, err := store.Attempt(ctx, addr, "c", base, testLimits)
			return err
		})
		id := store.names.name('a', addr)
		if exists(t, store.key("fail:", id)) {
			t.Error("the timed-out Attempt charged the failure budget")
		}
		p, err := store.Attempt(testCtx(t), addr, "c", base, testLimits)
		if err != nil || p.Attempts != 1 {
			t.Fatalf("Attempt after the stall = %d attempts, %v; want the first attempt", p.Attempts, err)
		}
	})

	t.Run("consume", func(t *testing.T) {
		store := open(t, srv, Options{Timeout: faultTimeout})
		const addr = "fay@example.com"
		warm(t, store)
		issue(t, store, addr, "c", base)
		frozen(t, srv, func(ctx context.Context) error {
			_, err := store.Consume(ctx, addr, "c", []byte("h"))
			return err
		})
		won, err := store.Consume(testCtx(t), addr, "c", []byte("h"))
		if err != nil || !won {
			t.Fatalf("Consume after the stall = %v, %v; want the code still there to consume", won, err)
		}
	})
}

// TestPing: Ping answers while Redis does, fails with ErrUnavailable within
// the store timeout while it is frozen or gone, and answers again when it is
// back, with no reconnect step.
func TestPing(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv, Options{Timeout: faultTimeout})
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	srv.Freeze()
	ctx := testCtx(t)
	start := time.Now()
	err := s.Ping(ctx)
	srv.Thaw()
	wantUnavailable(t, ctx, err, "no reply within")
	if took := time.Since(start); took > stall {
		t.Errorf("Ping took %v against a frozen Redis, want about the timeout %v", took, faultTimeout)
	}
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping after thaw: %v", err)
	}

	srv.Kill()
	ctx = testCtx(t)
	wantUnavailable(t, ctx, s.Ping(ctx), "connection refused")
	srv.Restart()
	if err := s.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
}
