package devserver_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/mail/internal/leakcheck"
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
	if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
		t.Errorf("Addr %s is not loopback", srv.Addr())
	}
}
