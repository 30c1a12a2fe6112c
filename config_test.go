package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSettingsFlagWinsOverEnvironment(t *testing.T) {
	environ := env(map[string]string{"OTPLOGIN_OUTBOX": "/from/env", "OTPLOGIN_REDIS_URL": "redis://env"})
	for _, tc := range []struct {
		name       string
		args       []string
		outbox     string
		redis      string
		explainErr string // what explain says of an error about OTPLOGIN_OUTBOX
	}{
		{"environment only", nil, "/from/env", "redis://env", "OTPLOGIN_OUTBOX: bad"},
		{"flag wins", []string{"--outbox", "/from/flag"}, "/from/flag", "redis://env", "--outbox (OTPLOGIN_OUTBOX): bad"},
		{"empty flag still wins", []string{"--outbox="}, "", "redis://env", "--outbox (OTPLOGIN_OUTBOX): bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSettings("test", environ, mailSettings, serviceSettings)
			if err := s.parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if got := s.get("OTPLOGIN_OUTBOX"); got != tc.outbox {
				t.Errorf("outbox = %q, want %q", got, tc.outbox)
			}
			if got := s.get("OTPLOGIN_REDIS_URL"); got != tc.redis {
				t.Errorf("redis = %q, want %q", got, tc.redis)
			}
			err := s.explain(errors.New("OTPLOGIN_OUTBOX: bad"))
			var ce configError
			if !errors.As(err, &ce) || err.Error() != tc.explainErr {
				t.Errorf("explain = %v (configError %v), want %q", err, errors.As(err, &ce), tc.explainErr)
			}
		})
	}
}

func TestSecretKey(t *testing.T) {
	hex64 := strings.Repeat("0f", 32)
	for _, tc := range []struct {
		name     string
		secret   string
		required bool
		wantLen  int    // of the key; 0 with no error means random per process
		wantErr  string // in the error
	}{
		{"unset, memory store", "", false, 0, ""},
		{"unset, Redis", "", true, 0, "required"},
		{"hex", hex64, true, 32, ""},
		{"long passphrase", strings.Repeat("x", 40), true, 40, ""},
		{"too short", "hunter2", true, 0, "at least 32 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSettings("test", env(map[string]string{"OTPLOGIN_SECRET": tc.secret}))
			key, err := secretKey(s, tc.required)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
					t.Errorf("error %q repeats the secret", err)
				}
				return
			}
			if err != nil || len(key) != tc.wantLen {
				t.Fatalf("key %d bytes, err %v; want %d bytes", len(key), err, tc.wantLen)
			}
		})
	}
}

func TestLocalLogRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	link := filepath.Join(dir, "otplogin.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	s := newSettings("test", env(map[string]string{"OTPLOGIN_LOG_FILE": link}))
	if _, _, err := localLogger(s, &mailer{}); err == nil {
		t.Fatal("opened a log through a symlink")
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the symlink's target was created: %v", err)
	}

	// Given as a flag, the error names the flag.
	s = newSettings("test", env(nil), localSettings)
	if err := s.parse([]string{"--log-file", link}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := localLogger(s, &mailer{}); err == nil || !strings.HasPrefix(err.Error(), "--log-file (OTPLOGIN_LOG_FILE): ") {
		t.Errorf("err = %v, want it to name --log-file", err)
	}

	s = newSettings("test", env(map[string]string{"OTPLOGIN_LOG_FILE": filepath.Join(dir, "real.log")}))
	logger, closeLog, err := localLogger(s, &mailer{})
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("hello", "address", "a***@example.com")
	closeLog()
	fi, err := os.Stat(filepath.Join(dir, "real.log"))
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("log file: %v, err %v; want a non-empty 0600 file", fi, err)
	}
}

func TestRedisUnavailableNamesTheFlag(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close() // nothing listens here now
	var stdout, stderr bytes.Buffer
	code := run(context.Background(),
		[]string{"--redis-url", "redis://" + closed + "/0", "--outbox", filepath.Join(t.TempDir(), "outbox")},
		&stdout, &stderr, env(map[string]string{"OTPLOGIN_SECRET": strings.Repeat("0f", 32)}))
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitFailed, stderr.String())
	}
	if !strings.HasPrefix(stderr.String(), "otplogin: --redis-url (OTPLOGIN_REDIS_URL): ") {
		t.Errorf("stderr = %q, want it to name --redis-url", stderr.String())
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
	s := newSettings("test", env(map[string]string{"OTPLOGIN_LOG_FILE": path}))
	if _, _, err := localLogger(s, &mailer{}); err == nil || !strings.Contains(err.Error(), "another user") {
		t.Fatalf("err = %v, want a refusal of another user's file", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Errorf("the other user's file was written: %v, %v", fi, err)
	}
}

// TestLoggerFormat checks each log format's shape, and that the default is
// the styled text only on a terminal.
func TestLoggerFormat(t *testing.T) {
	for _, tc := range []struct {
		format   string
		terminal bool
		want     string
	}{
		{"", false, `level=info msg="session ended" address=a***@example.com`},
		{"logfmt", true, `level=info msg="session ended" address=a***@example.com`},
		{"", true, "INFO  session ended address=a***@example.com"},
		{"text", false, "INFO  session ended address=a***@example.com"},
		{"json", false, `"level":"info","msg":"session ended","address":"a***@example.com"`},
	} {
		var buf strings.Builder
		l, err := newLogger(&buf, tc.format, tc.terminal)
		if err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		l.SetReportTimestamp(false)
		l.Info("session ended", "address", "a***@example.com")
		if got := buf.String(); !strings.Contains(got, tc.want) {
			t.Errorf("format %q, terminal %v: got %q, want it to hold %q", tc.format, tc.terminal, got, tc.want)
		}
	}
	if _, err := newLogger(io.Discard, "xml", false); err == nil || !strings.Contains(err.Error(), "text, logfmt or json") {
		t.Errorf("format xml: err = %v, want one naming the formats", err)
	}
}
