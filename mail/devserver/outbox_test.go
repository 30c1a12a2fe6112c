package devserver_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otplogin/otplogin/internal/leakcheck"
	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
)

// startOutbox runs a dev server on a fresh outbox and returns a sender that
// mails codes to it the way the app does.
func startOutbox(t *testing.T) (outbox string, send func(to, code string)) {
	t.Helper()
	outbox = filepath.Join(t.TempDir(), "outbox")
	srv, err := devserver.Start(t.Context(), outbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	sender, err := mail.New(srv.SenderConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sender.Close() })
	return outbox, func(to, code string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := sender.SendCode(ctx, to, code, time.Now().Add(5*time.Minute)); err != nil {
			t.Fatalf("SendCode(%s): %v", to, err)
		}
	}
}

func TestNewestCode(t *testing.T) {
	leakcheck.Check(t)
	outbox, send := startOutbox(t)
	send("Alice@Example.com", "111111")
	send("alice@example.com", "222222")
	send("bob-alice@example.com", "333333")
	// Two addresses whose file names are the same once unusual bytes are
	// replaced: only the To header tells them apart.
	send("a!b@example.com", "444444")
	send("a#b@example.com", "555555")
	send("a!b@example.com", "666666")
	send("a#b@example.com", "777777")
	// Not messages: a file being written, another file.
	for _, name := range []string{".incoming-123", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(outbox, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	raw, err := os.ReadFile(newestFile(t, outbox))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("\r\n")) {
		t.Fatal("the outbox message has no CRLF line ends; the test would not cover them")
	}

	for _, tc := range []struct {
		address, want string
	}{
		{"alice@example.com", "222222"},
		{"ALICE@EXAMPLE.COM", "222222"},
		{"  Alice@example.com ", "222222"},
		{"bob-alice@example.com", "333333"},
		{"a!b@example.com", "666666"},
		{"a#b@example.com", "777777"},
	} {
		got, err := devserver.NewestCode(t.Context(), outbox, tc.address, false)
		if err != nil || got != tc.want {
			t.Errorf("NewestCode(%q) = %q, %v; want %q", tc.address, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ outbox, address string }{
		{outbox, "carol@example.com"},
		{outbox, "alice@example.co"},
		{filepath.Join(t.TempDir(), "never-made"), "alice@example.com"},
	} {
		if got, err := devserver.NewestCode(t.Context(), tc.outbox, tc.address, false); !errors.Is(err, devserver.ErrNoMessage) {
			t.Errorf("NewestCode(%s, %q) = %q, %v; want ErrNoMessage", tc.outbox, tc.address, got, err)
		}
	}
}

// newestFile is the last message file by name.
func newestFile(t *testing.T, outbox string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(outbox, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no message files: %v", err)
	}
	return files[len(files)-1]
}

func TestNewestCodeWaits(t *testing.T) {
	leakcheck.Check(t)
	outbox, send := startOutbox(t)
	got := make(chan string, 1)
	go func() {
		code, err := devserver.NewestCode(t.Context(), outbox, "Dana@example.com", true)
		if err != nil {
			t.Error(err)
		}
		got <- code
	}()
	send("dana@example.com", "246810")
	select {
	case code := <-got:
		if code != "246810" {
			t.Fatalf("code = %q, want 246810", code)
		}
	case <-time.After(30 * time.Second): // against a hang, not a speed check
		t.Fatal("NewestCode is still waiting after the message arrived")
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := devserver.NewestCode(ctx, outbox, "erin@example.com", true); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting with an ended context: %v, want context.Canceled", err)
	}
}
