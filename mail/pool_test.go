package mail_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/otplogin/otplogin/internal/leakcheck"
	"github.com/otplogin/otplogin/internal/smtptest"
	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
)

func sendTo(t *testing.T, s *mail.Sender, to string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return s.SendCode(ctx, to, testCode, time.Now().Add(5*time.Minute))
}

func TestConnectionReuse(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       func(*mail.Config)
		between   func(*smtptest.Server) // after each send
		sends     int
		wantConns int
	}{
		{name: "reused", sends: 5, wantConns: 1},
		{name: "disabled", cfg: func(c *mail.Config) { c.MaxIdle = -1 }, sends: 3, wantConns: 3},
		{name: "idle timeout expired", cfg: func(c *mail.Config) { c.IdleTimeout = time.Nanosecond }, sends: 3, wantConns: 3},
		// RSET finds the dropped connection before the message is at stake.
		{name: "server dropped idle connection", between: (*smtptest.Server).DropConns, sends: 3, wantConns: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			srv := smtptest.Start(t, smtptest.Options{})
			cfg := configFor(srv)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			s := newSender(t, cfg)
			for i := range tc.sends {
				if err := sendTo(t, s, testTo); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
				if tc.between != nil {
					tc.between(srv)
				}
			}
			if n := srv.Connections(); n != tc.wantConns {
				t.Errorf("connections = %d, want %d", n, tc.wantConns)
			}
			if n := len(srv.Messages()); n != tc.sends {
				t.Errorf("messages = %d, want %d", n, tc.sends)
			}
		})
	}
}

func TestReuseDiscardsFailedConnection(t *testing.T) {
	leakcheck.Check(t)
	srv := smtptest.Start(t, smtptest.Options{Hooks: smtptest.Hooks{
		Rcpt: func(_ int, to string) error {
			if to == "gone@example.com" {
				return smtptest.Reply(550, "no such user")
			}
			return nil
		},
	}})
	s := newSender(t, configFor(srv))
	if err := sendTo(t, s, testTo); err != nil {
		t.Fatal(err)
	}
	var se *mail.SendError
	if err := sendTo(t, s, "gone@example.com"); !errors.As(err, &se) || !se.AddressRejected() {
		t.Fatalf("send to a rejected address: %v", err)
	}
	if err := sendTo(t, s, testTo); err != nil {
		t.Fatal(err)
	}
	if n := srv.Connections(); n != 2 {
		t.Errorf("connections = %d, want 2 (the failed one is not reused)", n)
	}
}

func TestReuseConcurrent(t *testing.T) {
	leakcheck.Check(t)
	const workers, each = 8, 5
	srv := smtptest.Start(t, smtptest.Options{})
	cfg := configFor(srv)
	cfg.MaxIdle = workers
	s := newSender(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				errs <- sendTo(t, s, fmt.Sprintf("user%d-%d@example.com", w, i))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := len(srv.Messages()); n != workers*each {
		t.Errorf("messages = %d, want %d", n, workers*each)
	}
	// Never more sessions than senders at once.
	if n := srv.Connections(); n > workers {
		t.Errorf("connections = %d, want <= %d", n, workers)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// After Close a send still works, on a connection of its own.
	before := srv.Connections()
	if err := sendTo(t, s, testTo); err != nil {
		t.Fatal(err)
	}
	if n := srv.Connections(); n != before+1 {
		t.Errorf("connections after Close = %d, want %d", n, before+1)
	}
}

// After the last send the pooled connection ends itself once IdleTimeout
// passes: no further send and no Close. The server sees its session end and
// the goroutines, ours and the server's, are back to what they were.
func TestIdleConnectionExpires(t *testing.T) {
	leakcheck.Check(t)
	conns := make(chan *smtp.Conn, 1)
	srv := smtptest.Start(t, smtptest.Options{Hooks: smtptest.Hooks{
		Mail: func(_ int, c *smtp.Conn) error {
			select {
			case conns <- c:
			default:
			}
			return nil
		},
	}})
	cfg := configFor(srv)
	cfg.IdleTimeout = 50 * time.Millisecond
	s := newSender(t, cfg) // its Close runs only at cleanup, after the checks
	before := runtime.NumGoroutine()

	if err := sendTo(t, s, testTo); err != nil {
		t.Fatal(err)
	}
	c := <-conns
	// Bounded well below the server's own 10s read timeout, which would
	// otherwise end the session too.
	deadline := time.Now().Add(5 * time.Second)
	for {
		open, n := c.Session() != nil, runtime.NumGoroutine()
		if !open && n <= before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5s after the send: server session open = %v, goroutines = %d (before the send %d)", open, n, before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The pool no longer offers the closed connection.
	if err := sendTo(t, s, testTo); err != nil {
		t.Fatal(err)
	}
	if n := srv.Connections(); n != 2 {
		t.Errorf("connections = %d, want 2", n)
	}
}

// BenchmarkSend measures SendCode against the dev server (STARTTLS, AUTH,
// outbox files) with 8 goroutines per CPU, with and without connection reuse.
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name    string
		maxIdle int
	}{{"reuse", 16}, {"fresh", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			srv, err := devserver.Start(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			cfg := srv.SenderConfig()
			cfg.MaxIdle = bc.maxIdle
			s, err := mail.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			expires := time.Now().Add(5 * time.Minute)
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.SendCode(context.Background(), "bench@example.com", testCode, expires); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
