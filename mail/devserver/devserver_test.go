package devserver_test

import (
	"context"
	"errors"
	"fmt"
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

// TestOutboxCap sends real mail to a server with a small cap: the oldest
// messages make room, files that are not messages are never touched, and
// a server started on an outbox over its cap trims it at once.
func TestOutboxCap(t *testing.T) {
	leakcheck.Check(t)
	outbox := t.TempDir()
	// Someone else's file, and a message from an earlier run.
	other := filepath.Join(outbox, "notes.txt")
	if err := os.WriteFile(other, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	earlier := filepath.Join(outbox, "20200101T000000.000000000Z-00000000-old@example.com.eml")
	if err := os.WriteFile(earlier, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}

	send := func(t *testing.T, srv *devserver.Server, to []string) {
		t.Helper()
		sender, err := mail.New(srv.SenderConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer sender.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		for i, addr := range to {
			if err := sender.SendCode(ctx, addr, fmt.Sprintf("%06d", i), time.Now().Add(time.Minute)); err != nil {
				t.Fatalf("SendCode to %s: %v", addr, err)
			}
		}
	}
	messages := func(t *testing.T) (names []string, total int64) {
		t.Helper()
		files, err := filepath.Glob(filepath.Join(outbox, "*.eml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, filepath.Base(f))
			total += fi.Size()
		}
		return names, total
	}

	t.Run("count", func(t *testing.T) {
		srv, err := devserver.Start(t.Context(), outbox, devserver.WithOutboxLimit(3, 0))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		send(t, srv, []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com"})
		names, _ := messages(t)
		if len(names) != 3 {
			t.Fatalf("outbox holds %v, want 3 messages", names)
		}
		for i, want := range []string{"b@example.com", "c@example.com", "d@example.com"} {
			if !strings.HasSuffix(names[i], "-"+want+".eml") {
				t.Errorf("message %d is %s, want the one to %s (oldest first gone)", i, names[i], want)
			}
		}
		// The newest is still readable, as a login needs.
		if m, ok := srv.Latest("d@example.com"); !ok || !strings.HasSuffix(m.Path, names[2]) {
			t.Errorf("Latest(d) = %v, %v", m.Path, ok)
		}
		if _, err := os.Stat(other); err != nil {
			t.Errorf("a file that is not a message was touched: %v", err)
		}
	})

	t.Run("bytes", func(t *testing.T) {
		_, before := messages(t)
		size := before / 3 // the three messages above are alike in size
		srv, err := devserver.Start(t.Context(), outbox, devserver.WithOutboxLimit(0, devserver.MinOutboxBytes))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		n := int(devserver.MinOutboxBytes/size) + 5
		to := make([]string, n)
		for i := range to {
			to[i] = fmt.Sprintf("r%d@example.com", i)
		}
		send(t, srv, to)
		names, total := messages(t)
		if total > devserver.MinOutboxBytes || total < devserver.MinOutboxBytes-2*size {
			t.Errorf("outbox holds %d bytes, want at most %d and close to it", total, devserver.MinOutboxBytes)
		}
		if last := names[len(names)-1]; !strings.HasSuffix(last, fmt.Sprintf("-r%d@example.com.eml", n-1)) {
			t.Errorf("newest message is %s, want the last one sent", last)
		}
	})

	t.Run("trimmed at start", func(t *testing.T) {
		srv, err := devserver.Start(t.Context(), outbox, devserver.WithOutboxLimit(2, 0))
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if names, _ := messages(t); len(names) != 2 {
			t.Errorf("outbox holds %d messages after Start, want 2", len(names))
		}
		if _, err := os.Stat(other); err != nil {
			t.Errorf("a file that is not a message was touched: %v", err)
		}
	})

	t.Run("bad limits", func(t *testing.T) {
		for _, o := range []devserver.Option{
			devserver.WithOutboxLimit(-1, 0),
			devserver.WithOutboxLimit(devserver.MaxOutboxFiles+1, 0),
			devserver.WithOutboxLimit(0, devserver.MinOutboxBytes-1),
			devserver.WithOutboxLimit(0, devserver.MaxOutboxBytes+1),
		} {
			if srv, err := devserver.Start(t.Context(), outbox, o); err == nil {
				srv.Close()
				t.Error("Start accepted a limit out of bounds")
			}
		}
	})
	if _, err := os.Stat(earlier); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the oldest message from an earlier run is still there: %v", err)
	}
}
