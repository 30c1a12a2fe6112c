package cli

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

func TestMailTestDevServer(t *testing.T) {
	leakcheck.Check(t)
	outbox := filepath.Join(t.TempDir(), "outbox")
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"mail-test", "--to", "me@example.com", "--outbox", outbox},
		IO{&stdout, &stderr, env(nil)})
	if code != ExitOK {
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
	code := Run(context.Background(), []string{"mail-test", "--to", "me@example.com", "--smtp-url", url},
		IO{&stdout, &stderr, env(settings)})
	if code != ExitOK {
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
	code = Run(context.Background(), []string{"mail-test", "--to", "me@example.com", "--smtp-url", url},
		IO{&stdout, &stderr, env(settings)})
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d", code, ExitFailed)
	}
	if !strings.Contains(stderr.String(), "550") || !strings.Contains(stderr.String(), "no such user") {
		t.Errorf("stderr = %q, want the server's 550 reply", stderr.String())
	}

	// A wrong password, from the environment, is an operator error too.
	stderr.Reset()
	delete(settings, "OTPLOGIN_SMTP_HOST")
	delete(settings, "OTPLOGIN_SMTP_PORT")
	settings["OTPLOGIN_SMTP_URL"] = fmt.Sprintf("smtp://user:wrong@%s", srv.Addr())
	if code := Run(context.Background(), []string{"mail-test", "--to", "me@example.com"}, IO{&stdout, &stderr, env(settings)}); code != ExitFailed {
		t.Fatalf("bad password: exit %d", code)
	}
	if !strings.Contains(stderr.String(), "535") || strings.Contains(stderr.String(), "wrong") {
		t.Errorf("stderr = %q, want 535 and no password", stderr.String())
	}
}
