package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/otplogin/otplogin/internal/fakeclock"
	"github.com/otplogin/otplogin/internal/redistest"
	"github.com/otplogin/otplogin/otp"
)

// recorder is a Sender that keeps the last code sent to each address.
type recorder struct {
	mu    sync.Mutex
	codes map[string]string
	sent  int
}

func (r *recorder) SendCode(_ context.Context, to, code string, _ time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.codes == nil {
		r.codes = map[string]string{}
	}
	r.codes[to] = code
	r.sent++
	return nil
}

func (r *recorder) code(t *testing.T, to string) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.codes[to]
	if !ok {
		t.Fatalf("no code was sent to %s", to)
	}
	return c
}

// replicas is two Services, as two otplogin processes would run them: each
// with its own connection pool to the same Redis, sharing the key, the
// prefix and the sender's outbox.
type replicas struct {
	a, b  *otp.Service
	clock *fakeclock.Clock // shared: replicas read synchronised wall clocks
	mail  *recorder
}

var sharedKey = []byte("0123456789abcdef0123456789abcdef")

func newReplicas(t *testing.T, srv *redistest.Server, lim otp.Limits) replicas {
	t.Helper()
	r := replicas{clock: fakeclock.New(base), mail: &recorder{}}
	prefix := "replica:" + t.Name() + ":"
	svc := func() *otp.Service {
		s, err := otp.New(otp.Config{Key: sharedKey, Limits: lim, Now: r.clock.Now},
			open(t, srv, Options{Prefix: prefix}), r.mail)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	r.a, r.b = svc(), svc()
	return r
}

// wrong is a well-formed code that is not c.
func wrong(c string) string {
	d := (c[0]-'0'+1)%10 + '0'
	return string(d) + c[1:]
}

func TestCrossReplica(t *testing.T) {
	srv := redistest.Start(t)
	const addr = "alice@example.com"

	t.Run("issued on one, verified on the other, once", func(t *testing.T) {
		r := newReplicas(t, srv, otp.Limits{})
		for _, pair := range [][2]*otp.Service{{r.a, r.b}, {r.b, r.a}} {
			issuer, verifier := pair[0], pair[1]
			if _, err := issuer.Request(testCtx(t), addr, "198.51.100.1"); err != nil {
				t.Fatalf("Request: %v", err)
			}
			code := r.mail.code(t, addr)
			if err := verifier.Verify(testCtx(t), addr, "198.51.100.1", code); err != nil {
				t.Fatalf("Verify on the other replica: %v", err)
			}
			if err := issuer.Verify(testCtx(t), addr, "198.51.100.1", code); !errors.Is(err, otp.ErrNoCode) {
				t.Fatalf("Verify of a used code on the issuer: %v, want ErrNoCode", err)
			}
			r.clock.Advance(time.Second)
		}
	})

	t.Run("cooldown holds across replicas", func(t *testing.T) {
		r := newReplicas(t, srv, otp.Limits{})
		if _, err := r.a.Request(testCtx(t), addr, "198.51.100.1"); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(time.Second)
		tk, err := r.b.Request(testCtx(t), addr, "198.51.100.2")
		if err != nil || !tk.AlreadySent || r.mail.sent != 1 {
			t.Fatalf("second Request on B = %+v, %v with %d sent; want AlreadySent, 1 sent", tk, err, r.mail.sent)
		}
	})

	t.Run("parallel wrong guesses on both replicas", func(t *testing.T) {
		lim := otp.DefaultLimits()
		lim.FailureBudget = 100
		r := newReplicas(t, srv, lim)
		if _, err := r.a.Request(testCtx(t), addr, "198.51.100.1"); err != nil {
			t.Fatal(err)
		}
		code := r.mail.code(t, addr)
		var (
			mu       sync.Mutex
			verdicts int
			others   = map[string]int{}
			wg       sync.WaitGroup
			start    = make(chan struct{})
		)
		for i := range 64 {
			svc := r.a
			if i%2 == 1 {
				svc = r.b
			}
			wg.Go(func() {
				<-start
				err := svc.Verify(testCtx(t), addr, "198.51.100.1", wrong(code))
				mu.Lock()
				defer mu.Unlock()
				var wce *otp.WrongCodeError
				switch {
				case errors.As(err, &wce):
					verdicts++
				case errors.Is(err, otp.ErrTooManyAttempts):
					others["too many attempts"]++
				default:
					others[fmt.Sprint(err)]++
				}
			})
		}
		close(start)
		wg.Wait()
		if verdicts != lim.MaxAttempts || others["too many attempts"] != 64-lim.MaxAttempts {
			t.Fatalf("64 wrong guesses over two replicas: %d verdicts, others %v; want %d verdicts",
				verdicts, others, lim.MaxAttempts)
		}
		if err := r.b.Verify(testCtx(t), addr, "198.51.100.1", code); !errors.Is(err, otp.ErrTooManyAttempts) {
			t.Fatalf("right code after the limit: %v, want ErrTooManyAttempts", err)
		}
	})

	t.Run("client cap counts both replicas", func(t *testing.T) {
		lim := otp.DefaultLimits()
		lim.ClientIssues = 4
		r := newReplicas(t, srv, lim)
		for i := range lim.ClientIssues {
			svc := []*otp.Service{r.a, r.b}[i%2]
			if _, err := svc.Request(testCtx(t), fmt.Sprintf("u%d@example.com", i), "203.0.113.9"); err != nil {
				t.Fatalf("Request %d: %v", i, err)
			}
		}
		_, err := r.b.Request(testCtx(t), "late@example.com", "203.0.113.9")
		var le *otp.LimitError
		if !errors.As(err, &le) || le.Kind != otp.LimitClient {
			t.Fatalf("Request past the client cap: %v, want LimitClient", err)
		}
	})

	t.Run("global rate counts both replicas", func(t *testing.T) {
		lim := otp.DefaultLimits()
		lim.GlobalIssuesPerSecond = 3
		r := newReplicas(t, srv, lim)
		for i := range 3 {
			svc := []*otp.Service{r.a, r.b}[i%2]
			if _, err := svc.Request(testCtx(t), fmt.Sprintf("u%d@example.com", i), fmt.Sprint("c", i)); err != nil {
				t.Fatalf("Request %d: %v", i, err)
			}
		}
		_, err := r.b.Request(testCtx(t), "late@example.com", "c9")
		var le *otp.LimitError
		if !errors.As(err, &le) || le.Kind != otp.LimitGlobalRate || !le.RetryAt.Equal(base.Add(time.Second)) {
			t.Fatalf("Request past the rate: %v, want LimitGlobalRate until the second ends", err)
		}
	})

	t.Run("an IPv6 /48 counts both replicas", func(t *testing.T) {
		lim := otp.DefaultLimits()
		lim.ClientIssues48 = 3
		r := newReplicas(t, srv, lim)
		for i := range 3 {
			svc := []*otp.Service{r.a, r.b}[i%2]
			if _, err := svc.Request(testCtx(t), fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("2001:db8:4:%x00::/64", i)); err != nil {
				t.Fatalf("Request %d: %v", i, err)
			}
		}
		_, err := r.b.Request(testCtx(t), "late@example.com", "2001:db8:4:ff00::/64")
		var le *otp.LimitError
		if !errors.As(err, &le) || le.Kind != otp.LimitClient {
			t.Fatalf("Request past the /48's cap: %v, want LimitClient", err)
		}
	})

	t.Run("global cap counts both replicas", func(t *testing.T) {
		lim := otp.DefaultLimits()
		lim.MaxPending = 2
		r := newReplicas(t, srv, lim)
		for i, svc := range []*otp.Service{r.a, r.b} {
			if _, err := svc.Request(testCtx(t), fmt.Sprintf("u%d@example.com", i), fmt.Sprint("c", i)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := r.a.Request(testCtx(t), "late@example.com", "c9")
		var le *otp.LimitError
		if !errors.As(err, &le) || le.Kind != otp.LimitBusy {
			t.Fatalf("Request past the global cap: %v, want LimitBusy", err)
		}
	})
}

// TestDumpShowsNoSecrets: after a full request through a Service, nothing
// in the database spells out the address, the client or the code.
func TestDumpShowsNoSecrets(t *testing.T) {
	srv := redistest.Start(t)
	r := newReplicas(t, srv, otp.Limits{})
	const addr, client, v6 = "Mallory.Secret@Example.com", "192.0.2.77", "2001:db8:77:1::/64"
	if _, err := r.a.Request(testCtx(t), addr, client); err != nil {
		t.Fatal(err)
	}
	code := r.mail.code(t, "Mallory.Secret@example.com")
	// A wrong guess from an IPv6 client leaves its shares at all three
	// levels behind.
	if err := r.b.Verify(testCtx(t), addr, v6, wrong(code)); !errors.As(err, new(*otp.WrongCodeError)) {
		t.Fatalf("wrong guess: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	keys, err := rdb.Keys(testCtx(t), "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("KEYS = %q, %v", keys, err)
	}
	var dump []string
	for _, k := range keys {
		dump = append(dump, k)
		switch typ := rdb.Type(testCtx(t), k).Val(); typ {
		case "hash":
			for f, v := range rdb.HGetAll(testCtx(t), k).Val() {
				dump = append(dump, f, v)
			}
		case "zset":
			dump = append(dump, rdb.ZRange(testCtx(t), k, 0, -1).Val()...)
		default:
			t.Fatalf("key %q has unexpected type %q", k, typ)
		}
	}
	// That names cannot be computed from a guessed address without the
	// server key is TestSecretNamesKeys's part.
	for _, v := range dump {
		lv := strings.ToLower(v)
		if strings.Contains(lv, "mallory") || strings.Contains(v, client) || strings.Contains(v, "2001:db8") || v == code {
			t.Errorf("the database shows %q", v)
		}
	}
}
