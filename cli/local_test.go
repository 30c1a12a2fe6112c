package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"charm.land/log/v2"
)

func TestLocalLogRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	link := filepath.Join(dir, "otplogin.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := localLogger(&Config{LogFile: link}, &mailer{})
	if err == nil || !strings.HasPrefix(err.Error(), "--log-file (OTPLOGIN_LOG_FILE): ") {
		t.Fatalf("err = %v, want a refusal naming --log-file", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the symlink's target was created: %v", err)
	}

	logger, _, closeLog, err := localLogger(&Config{LogFile: filepath.Join(dir, "real.log"), LogLevel: log.InfoLevel}, &mailer{})
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("hello", "addr", "a***@example.com")
	logger.Debug("not at info")
	closeLog()
	fi, err := os.Stat(filepath.Join(dir, "real.log"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("log file: %v, err %v; want a non-empty 0600 file", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "real.log")); bytes.Contains(b, []byte("not at info")) {
		t.Errorf("a debug line passed --log-level info: %s", b)
	}
}

func TestLocalLogRefusesAnotherUsersFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another user")
	}
	path := filepath.Join(t.TempDir(), "otplogin.log")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil { // nobody
		t.Fatal(err)
	}
	if _, _, _, err := localLogger(&Config{LogFile: path}, &mailer{}); err == nil || !strings.Contains(err.Error(), "another user") {
		t.Fatalf("err = %v, want a refusal of another user's file", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Errorf("the other user's file was written: %v, %v", fi, err)
	}
}

// TestRedisUnavailable checks that a Redis that does not answer is not a
// bad setting (exit 1), but the line names the setting to check.
func TestRedisUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close() // nothing listens here now
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(),
		[]string{"--redis-url", "redis://" + closed + "/0", "--outbox", filepath.Join(t.TempDir(), "outbox"), "--log-file", filepath.Join(t.TempDir(), "log")},
		IO{&stdout, &stderr, env(map[string]string{"OTPLOGIN_SECRET": strings.Repeat("0f", 32)})})
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d; stderr %q", code, ExitFailed, stderr.String())
	}
	if !strings.HasPrefix(stderr.String(), "otplogin: --redis-url (OTPLOGIN_REDIS_URL): ") || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("stderr = %q, want one line naming --redis-url", stderr.String())
	}
}
