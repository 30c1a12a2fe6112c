package devserver_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/leakcheck"
	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
)

func TestDevServerOutbox(t *testing.T) {
	leakcheck.Check(t)
	outbox := filepath.Join(t.TempDir(), "nested", "outbox")
	srv, err := devserver.Start(t.Context(), outbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	sender, err := mail.New(srv.SenderConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, code := range []string{"111111", "482915"} {
		if err := sender.SendCode(ctx, "Alice@example.com", code, time.Now().Add(5*time.Minute)); err != nil {
			t.Fatalf("SendCode: %v", err)
		}
	}
	if err := sender.SendCode(ctx, "bob-alice@example.com", "999999", time.Now().Add(5*time.Minute)); err != nil {
		t.Fatalf("SendCode: %v", err)
	}

	fi, err := os.Stat(outbox)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("outbox mode %v, want 0700", perm)
	}
	// The documented recipe: newest file for an address by glob and sort.
	files, err := filepath.Glob(filepath.Join(outbox, "*Z-????????-alice@example.com.eml"))
	if err != nil || len(files) != 2 {
		t.Fatalf("glob = %v, %v; want 2 files for alice", files, err)
	}
	newest := files[len(files)-1]
	fi, err = os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("message mode %v, want 0600", perm)
	}
	raw, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := mail.CodeFromMessage(raw); err != nil || code != "482915" {
		t.Errorf("CodeFromMessage(newest file) = %q, %v; want 482915", code, err)
	}

	latest, ok := srv.Latest("alice@example.com")
	if !ok || latest.Path != newest {
		t.Fatalf("Latest = %+v, %v; want the newest file %s", latest.Path, ok, newest)
	}
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("Messages() has %d, want 3", n)
	}
	if latest.Time.IsZero() || len(latest.Raw) == 0 || latest.From != "otplogin@dev.invalid" {
		t.Errorf("Latest = %+v", latest)
	}
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Errorf("Addr %s is not loopback", srv.Addr())
	}
}

func TestWaitFor(t *testing.T) {
	leakcheck.Check(t)
	srv, err := devserver.Start(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := srv.Apply(mail.Config{From: "Login <login@example.org>", Subject: "Code inside"})
	if cfg.From != "Login <login@example.org>" || cfg.Subject != "Code inside" || cfg.Host != "127.0.0.1" {
		t.Fatalf("Apply lost settings: %+v", cfg)
	}
	sender, err := mail.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Close() })

	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- sender.SendCode(ctx, "carol@example.com", "246810", time.Now().Add(time.Minute)) }()
	m, err := srv.WaitFor(ctx, "Carol@Example.com", start)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if code, err := mail.CodeFromMessage(m.Raw); err != nil || code != "246810" {
		t.Errorf("code = %q, %v", code, err)
	}

	// Nothing newer arrives: WaitFor gives up with the context.
	short, cancelShort := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancelShort()
	if _, err := srv.WaitFor(short, "carol@example.com", m.Time); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor with nothing new = %v, want DeadlineExceeded", err)
	}
}

func TestCloseStopsListening(t *testing.T) {
	leakcheck.Check(t)
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := devserver.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	cancel() // the context ends the server; Close waits for it
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
}

// TestSharedOutboxRefused checks that a shared folder such as /tmp is
// refused, and left as it was, rather than tightened to 0700.
func TestSharedOutboxRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	srv, err := devserver.Start(t.Context(), dir)
	if err == nil {
		srv.Close()
		t.Fatal("Start accepted a world-writable sticky folder")
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "shared folder") {
		t.Errorf("err = %v, want a *fs.PathError saying it is shared", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (os.ModeSticky | os.ModePerm); got != os.ModeSticky|0o777 {
		t.Errorf("mode after Start = %v, want it unchanged", got)
	}
}
