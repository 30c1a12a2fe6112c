package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/otplogin/otplogin/internal/leakcheck"
	"github.com/otplogin/otplogin/internal/smtptest"
)

// env is a getenv over a fixed map: run never reads the process environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestMailTestDevServer(t *testing.T) {
	leakcheck.Check(t)
	outbox := filepath.Join(t.TempDir(), "outbox")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"mail-test", "--to", "me@example.com", "--outbox", outbox},
		&stdout, &stderr, env(nil))
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "dev mail server") || !strings.Contains(stdout.String(), "Sent a test message to me@example.com") {
		t.Errorf("stdout = %q", stdout.String())
	}
	if files, _ := filepath.Glob(filepath.Join(outbox, "*-me@example.com.eml")); len(files) != 1 {
		t.Errorf("outbox holds %d messages for me@example.com, want 1", len(files))
	}
}

func TestMailTestRealServer(t *testing.T) {
	leakcheck.Check(t)
	var refuse atomic.Bool
	srv := smtptest.Start(t, smtptest.Options{Hooks: smtptest.Hooks{
		Rcpt: func(_ int, to string) error {
			if refuse.Load() {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		},
	}})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{
		"OTPLOGIN_SMTP_CA_FILE": ca,
		"OTPLOGIN_MAIL_FROM":    "Login <login@example.org>",
		// --smtp-url names the whole server: split variables left in the
		// environment must neither conflict with it nor be used.
		"OTPLOGIN_SMTP_HOST": "stale.example",
		"OTPLOGIN_SMTP_PORT": "2525",
	}
	url := fmt.Sprintf("smtp://user:secret@%s", srv.Addr())

	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"mail-test", "--to", "me@example.com", "--smtp-url", url},
		&stdout, &stderr, env(settings))
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "me@example.com" || msgs[0].From != "login@example.org" {
		t.Fatalf("server got %+v, want one message from login@example.org to me@example.com", msgs)
	}
	if s := srv.Sessions(); !s[len(s)-1].TLS || s[len(s)-1].AuthUser != "user" || s[len(s)-1].Helo != "example.org" {
		t.Errorf("last session %+v: want TLS, user, EHLO example.org", s[len(s)-1])
	}

	// A refusal is reported with the server's exact reason, for the operator.
	refuse.Store(true)
	stdout.Reset()
	code = run(context.Background(), []string{"mail-test", "--to", "me@example.com", "--smtp-url", url},
		&stdout, &stderr, env(settings))
	if code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(stderr.String(), "550") || !strings.Contains(stderr.String(), "no such user") {
		t.Errorf("stderr = %q, want the server's 550 reply", stderr.String())
	}

	// A wrong password, from the environment, is an operator error too.
	stderr.Reset()
	delete(settings, "OTPLOGIN_SMTP_HOST")
	delete(settings, "OTPLOGIN_SMTP_PORT")
	settings["OTPLOGIN_SMTP_URL"] = fmt.Sprintf("smtp://user:wrong@%s", srv.Addr())
	if code := run(context.Background(), []string{"mail-test", "--to", "me@example.com"}, &stdout, &stderr, env(settings)); code != exitFailed {
		t.Fatalf("bad password: exit %d", code)
	}
	if !strings.Contains(stderr.String(), "535") || strings.Contains(stderr.String(), "wrong") {
		t.Errorf("stderr = %q, want 535 and no password", stderr.String())
	}
}

func TestMailTestUsage(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"mail-test"}, "--to"},
		{[]string{"mail-test", "--to", "not an address"}, "--to"},
		{[]string{"mail-test", "--to", "a@x\r\nBcc: v@evil.example"}, "--to"},
		{[]string{"mail-test", "--to", "me@example.com", "--outbox", filepath.Join(notADir, "outbox")}, "--outbox (OTPLOGIN_OUTBOX)"},
		{[]string{"mail-test", "--bogus"}, "flag provided but not defined: -bogus"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr, env(nil)); code != exitConfigError {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.args, code, exitConfigError, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q does not name %s", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: stdout = %q, want nothing", tc.args, stdout.String())
		}
	}
}
