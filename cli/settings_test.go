package cli

import (
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"charm.land/log/v2"
	"github.com/spf13/cobra"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/serve"
)

var update = flag.Bool("update", false, "rewrite README.md's table of settings from the table")

// parse reads the settings of command from args and environ as the
// command would, without running it.
func parse(t *testing.T, command commands, args []string, environ map[string]string) (*Config, error) {
	t.Helper()
	cmd := &cobra.Command{}
	addFlags(cmd.Flags(), slices.Concat(table, commandFlags), command)
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatalf("flags %q: %v", args, err)
	}
	return readConfig(cmd.Flags(), env(environ), command)
}

func TestDefaults(t *testing.T) {
	c, err := parse(t, cmdServe, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Serve.MaxSessions != serve.DefaultMaxSessions || c.Serve.MaxSessionsPerClient != serve.DefaultMaxSessionsPerClient ||
		c.Serve.ConnRate != serve.DefaultConnRate || c.Serve.ReadRate != serve.DefaultReadRate ||
		c.Serve.InputRate != serve.DefaultInputRate || c.Serve.Listen != serve.DefaultListen ||
		c.OTP.TTL != otp.DefaultTTL || c.OTP.Limits.ClientIssues != otp.DefaultLimits().ClientIssues ||
		c.Mail.Timeout != mail.DefaultTimeout || c.Mail.Subject != "" || c.Mail.AppName != mail.DefaultAppName ||
		c.MetricsAddr != "" || c.Mail.TemplateDir != "" ||
		c.LogLevel != log.InfoLevel || c.Mail.Configured() || c.OTP.Key != nil {
		t.Errorf("defaults: %+v", c)
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	environ := map[string]string{"OTPLOGIN_OUTBOX": "/from/env", "OTPLOGIN_CODE_TTL": "10m", "OTPLOGIN_MAX_SESSIONS": "5"}
	for _, tc := range []struct {
		name   string
		args   []string
		outbox string
		ttl    time.Duration
		max    int
	}{
		{"environment only", nil, "/from/env", 10 * time.Minute, 5},
		{"flag wins", []string{"--outbox", "/from/flag", "--code-ttl=2m", "--max-sessions", "7"}, "/from/flag", 2 * time.Minute, 7},
		{"empty flag wins, with the default", []string{"--outbox=", "--code-ttl="}, "", otp.DefaultTTL, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(t, cmdServe, tc.args, environ)
			if err != nil {
				t.Fatal(err)
			}
			if c.Outbox != tc.outbox || c.OTP.TTL != tc.ttl || c.Serve.MaxSessions != tc.max {
				t.Errorf("outbox %q, ttl %v, max %d; want %q, %v, %d", c.Outbox, c.OTP.TTL, c.Serve.MaxSessions, tc.outbox, tc.ttl, tc.max)
			}
		})
	}
}

// TestSettingsOfOtherCommands checks that a command reads only its own
// settings: a bad serve variable does not stop the local login.
func TestSettingsOfOtherCommands(t *testing.T) {
	if _, err := parse(t, cmdLocal, nil, map[string]string{"OTPLOGIN_MAX_SESSIONS": "lots"}); err != nil {
		t.Errorf("local read a serve setting: %v", err)
	}
	if _, err := parse(t, cmdServe, nil, map[string]string{"OTPLOGIN_MAX_SESSIONS": "lots"}); err == nil {
		t.Error("serve took a bad OTPLOGIN_MAX_SESSIONS")
	}
}

func TestTypedValues(t *testing.T) {
	c, err := parse(t, cmdServe, []string{
		"--conn-rate", "2.5", "--read-rate", "1048576", "--input-rate", "65536", "--trusted-proxies", "10.0.0.7, 192.168.0.0/16", "--log-level", "WARN",
		"--smtp-security", "tls", "--smtp-host", "smtp.example.com", "--smtp-port", "2465",
		"--smtp-username", "bot@example.com", "--smtp-timeout", "45s",
	}, map[string]string{"OTPLOGIN_SMTP_PASSWORD": " pass word ", "OTPLOGIN_SECRET": strings.Repeat("0f", 32)})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.7/32"), netip.MustParsePrefix("192.168.0.0/16")}
	if c.Serve.ConnRate != 2.5 || c.Serve.ReadRate != 1<<20 || c.Serve.InputRate != 64<<10 || !slices.Equal(c.Serve.TrustedProxies, want) || c.LogLevel != log.WarnLevel ||
		c.Mail.Security != mail.ImplicitTLS || c.Mail.Port != 2465 || c.Mail.Password != " pass word " ||
		c.Mail.Timeout != 45*time.Second || len(c.OTP.Key) != 32 {
		t.Errorf("config: %+v", c)
	}
}

// TestSMTPServerChoice checks which of --smtp-url and the parts wins.
func TestSMTPServerChoice(t *testing.T) {
	const url = "smtps://bot%40example.com:pw@url.example.com"
	parts := map[string]string{"OTPLOGIN_SMTP_HOST": "parts.example.com", "OTPLOGIN_SMTP_PORT": "2525",
		"OTPLOGIN_SMTP_USERNAME": "a@example.com", "OTPLOGIN_SMTP_PASSWORD": "pw2"}
	withURL := map[string]string{"OTPLOGIN_SMTP_URL": url}
	for _, tc := range []struct {
		name    string
		args    []string
		environ map[string]string
		host    string // "" with wantErr
		wantErr string
	}{
		{"url variable", nil, withURL, "url.example.com", ""},
		{"parts variables", nil, parts, "parts.example.com", ""},
		{"url flag sets aside parts variables", []string{"--smtp-url", url}, parts, "url.example.com", ""},
		{"host flag sets aside the url variable", []string{"--smtp-host", "flag.example.com", "--from", "a@example.com"}, withURL, "flag.example.com", ""},
		{"empty url flag: the dev server", []string{"--smtp-url="}, parts, "", ""},
		{"both variables", nil, map[string]string{"OTPLOGIN_SMTP_URL": url, "OTPLOGIN_SMTP_HOST": "x.example.com"}, "", "--smtp-url (OTPLOGIN_SMTP_URL): set either this or --smtp-host (OTPLOGIN_SMTP_HOST)"},
		{"both flags", []string{"--smtp-url", url, "--smtp-port", "25"}, nil, "", "--smtp-url (OTPLOGIN_SMTP_URL): set either"},
		{"a part without the host", nil, map[string]string{"OTPLOGIN_SMTP_USERNAME": "bot"}, "", "--smtp-username (OTPLOGIN_SMTP_USERNAME): set, but --smtp-host (OTPLOGIN_SMTP_HOST) is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(t, cmdMailTest, tc.args, tc.environ)
			if tc.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || c.Mail.Host != tc.host {
				t.Fatalf("host %q, err %v; want %q", c.Mail.Host, err, tc.host)
			}
		})
	}
}

// TestMailFieldNamesItsSetting checks that mail's *FieldError becomes a
// *SettingError for the setting the operator gave: the part, or the URL
// that gave the server.
func TestMailFieldNamesItsSetting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ map[string]string
		want    *setting
	}{
		{"security from the parts", map[string]string{"OTPLOGIN_SMTP_HOST": "smtp.example.com", "OTPLOGIN_SMTP_SECURITY": "none", "OTPLOGIN_MAIL_FROM": "a@b.example"}, smtpSecurity},
		{"security from the url", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://smtp.example.com?security=none", "OTPLOGIN_MAIL_FROM": "a@b.example"}, smtpURL},
		{"user from the parts", map[string]string{"OTPLOGIN_SMTP_HOST": "smtp.example.com", "OTPLOGIN_SMTP_USERNAME": "a@b.example"}, smtpUsername},
		{"user from the url", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://a%40b.example@smtp.example.com"}, smtpURL},
		{"password with a newline", map[string]string{"OTPLOGIN_SMTP_HOST": "smtp.example.com", "OTPLOGIN_SMTP_USERNAME": "a@b.example", "OTPLOGIN_SMTP_PASSWORD": "pw\n"}, smtpPassword},
		{"no from", map[string]string{"OTPLOGIN_SMTP_HOST": "smtp.example.com", "OTPLOGIN_SMTP_USERNAME": "bot", "OTPLOGIN_SMTP_PASSWORD": "pw"}, find("OTPLOGIN_MAIL_FROM")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, cmdMailTest, nil, tc.environ)
			var se *SettingError
			if !errors.As(err, &se) || se.Env != tc.want.Env || se.Flag != tc.want.flagName() {
				t.Fatalf("err = %#v, want a *SettingError for %s", err, tc.want.label())
			}
			var fe *mail.FieldError
			if errors.As(err, &fe) {
				t.Errorf("the error still holds mail's %v: the setting replaces the field", fe)
			}
		})
	}
}

// TestSettingError checks the error's shape: like *strconv.NumError, its
// parts are fields, its text is made from them, and it unwraps.
func TestSettingError(t *testing.T) {
	_, err := parse(t, cmdServe, []string{"--max-sessions", "abc"}, nil)
	var se *SettingError
	if !errors.As(err, &se) {
		t.Fatalf("err = %#v, want a *SettingError", err)
	}
	if se.Flag != "--max-sessions" || se.Env != "OTPLOGIN_MAX_SESSIONS" || se.Value != "abc" {
		t.Errorf("error = %#v", se)
	}
	if got, want := err.Error(), `--max-sessions (OTPLOGIN_MAX_SESSIONS): "abc" is not a whole number from 1 to 1000000`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.Unwrap(err) != se.Err {
		t.Error("Unwrap does not give the reason")
	}

	// A secret's value is never repeated.
	_, err = parse(t, cmdLocal, nil, map[string]string{"OTPLOGIN_SECRET": "hunter2"})
	if !errors.As(err, &se) || se.Value != "" || se.Env != "OTPLOGIN_SECRET" || se.Flag != "" || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("secret: %#v", err)
	}
	_, err = parse(t, cmdLocal, []string{"--smtp-url", "smtp://u:hunter2@h.example:abc"}, nil)
	if !errors.As(err, &se) || se.Value != "" || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("smtp url: %#v", err)
	}
}

func TestParseSecret(t *testing.T) {
	for _, tc := range []struct {
		name, secret string
		wantLen      int // 0: an error
	}{
		{"hex", strings.Repeat("0f", 32), 32},
		{"long passphrase", strings.Repeat("x", 40), 40},
		{"short hex is a passphrase", strings.Repeat("0f", 16), 32},
		{"too short", "hunter2", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, err := parseSecret(tc.secret)
			if len(key) != tc.wantLen || (err != nil) != (tc.wantLen == 0) {
				t.Fatalf("key %d bytes, err %v; want %d bytes", len(key), err, tc.wantLen)
			}
		})
	}
}

// TestREADME checks README.md's table of settings against the table;
// go test ./cli -run README -update rewrites it.
func TestREADME(t *testing.T) {
	const path = "../README.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	begin, end := strings.Index(readme, readmeBegin), strings.Index(readme, readmeEnd)
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no table between %q and %q", readmeBegin, readmeEnd)
	}
	begin += len(readmeBegin) + 1
	want := settingsMarkdown()
	if readme[begin:end] == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(readme[:begin]+want+readme[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's table of settings is not the table's; run go test ./cli -run README -update\nhave:\n%s\nwant:\n%s",
		readme[begin:end], want)
}

// TestREADMETableHasEverySetting checks the generator itself: each
// setting's variable, flag and default show.
func TestREADMETableHasEverySetting(t *testing.T) {
	md := settingsMarkdown()
	for _, s := range table {
		row := ""
		for _, line := range strings.Split(md, "\n") {
			if strings.HasPrefix(line, "| `"+s.Env+"` |") {
				row = line
			}
		}
		if row == "" || !strings.Contains(row, s.flagName()) || !strings.Contains(row, s.defaultText()) {
			t.Errorf("%s: row %q", s.label(), row)
		}
	}
	if _, err := os.Stat(filepath.Join("..", "README.md")); err != nil {
		t.Fatal(err)
	}
}
