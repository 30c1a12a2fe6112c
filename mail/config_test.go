package mail_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otplogin/otplogin/mail"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want mail.Config
	}{
		{name: "nothing: dev server", env: nil, want: mail.Config{}},
		{
			name: "gmail url with app password spaces",
			env:  map[string]string{"OTPLOGIN_SMTP_URL": "smtp://me%40gmail.com:abcd%20efgh%20ijkl%20mnop@smtp.gmail.com:587"},
			want: mail.Config{Host: "smtp.gmail.com", Port: 587, Username: "me@gmail.com", Password: "abcdefghijklmnop", Security: mail.StartTLS},
		},
		{
			name: "percent-encoded password keeps its specials",
			env: map[string]string{
				"OTPLOGIN_SMTP_URL":  "smtps://bot:p%40ss%2Fw%3Ard%23%20x@mail.example.com",
				"OTPLOGIN_MAIL_FROM": "Example Login <login@example.com>",
			},
			want: mail.Config{Host: "mail.example.com", Username: "bot", Password: "p@ss/w:rd# x", Security: mail.ImplicitTLS, From: "Example Login <login@example.com>"},
		},
		{
			name: "loopback cleartext on request",
			env:  map[string]string{"OTPLOGIN_SMTP_URL": "smtp://127.0.0.1:2525/?security=none", "OTPLOGIN_MAIL_FROM": "otp@example.com"},
			want: mail.Config{Host: "127.0.0.1", Port: 2525, Security: mail.NoTLS, From: "otp@example.com"},
		},
		{
			name: "IPv6 loopback, cleartext on request",
			env:  map[string]string{"OTPLOGIN_SMTP_URL": "smtp://[::1]:2525/?security=none", "OTPLOGIN_MAIL_FROM": "otp@example.com"},
			want: mail.Config{Host: "::1", Port: 2525, Security: mail.NoTLS, From: "otp@example.com"},
		},
		{
			name: "split variables, security from port 465",
			env: map[string]string{
				"OTPLOGIN_SMTP_HOST": "smtp.office365.com", "OTPLOGIN_SMTP_PORT": "465",
				"OTPLOGIN_SMTP_USERNAME": "bot@example.com", "OTPLOGIN_SMTP_PASSWORD": "pw",
				"OTPLOGIN_SMTP_HELO": "mx.example.com", "OTPLOGIN_SMTP_TIMEOUT": "45s",
				"OTPLOGIN_SMTP_CA_FILE": "/etc/ssl/extra.pem", "OTPLOGIN_MAIL_SUBJECT": "Your login code",
			},
			want: mail.Config{
				Host: "smtp.office365.com", Port: 465, Username: "bot@example.com", Password: "pw",
				HeloName: "mx.example.com", Timeout: 45 * time.Second, CAFile: "/etc/ssl/extra.pem", Subject: "Your login code",
			},
		},
		{
			name: "from alone, no server",
			env:  map[string]string{"OTPLOGIN_MAIL_FROM": "otp@example.com"},
			want: mail.Config{From: "otp@example.com"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mail.ConfigFromEnv(env(tc.env))
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if got.Configured() != (tc.want.Host != "") {
				t.Errorf("Configured() = %v", got.Configured())
			}
		})
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	const pw = "hunter2-Secret"
	for _, tc := range []struct {
		name    string
		env     map[string]string
		setting string // the error must start with it
	}{
		{"bad port", map[string]string{"OTPLOGIN_SMTP_HOST": "h.example", "OTPLOGIN_SMTP_PORT": "abc"}, "OTPLOGIN_SMTP_PORT: \"abc\" is not a port number"},
		{"port out of range", map[string]string{"OTPLOGIN_SMTP_HOST": "h.example", "OTPLOGIN_SMTP_PORT": "70000"}, "OTPLOGIN_SMTP_PORT"},
		{"bad url port", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://u:" + pw + "@h.example:abc"}, "OTPLOGIN_SMTP_URL"},
		{"bad url escape", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://u:" + pw + "%zz@h.example:587"}, "OTPLOGIN_SMTP_URL"},
		{"unescaped # in password", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://u:" + pw + "#x@h.example"}, "OTPLOGIN_SMTP_URL"},
		{"bad scheme", map[string]string{"OTPLOGIN_SMTP_URL": "http://u:" + pw + "@h.example"}, "OTPLOGIN_SMTP_URL"},
		{"no host", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://u:" + pw + "@:587"}, "OTPLOGIN_SMTP_URL"},
		{"unknown query", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://u:" + pw + "@h.example?skip_verify=true"}, "OTPLOGIN_SMTP_URL"},
		{"none to remote via url", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://u:" + pw + "@smtp.example.com?security=none", "OTPLOGIN_MAIL_FROM": "a@b.example"}, "OTPLOGIN_SMTP_URL: none (cleartext)"},
		{"user without password via url", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://user@smtp.example.com:587", "OTPLOGIN_MAIL_FROM": "a@b.example"}, "OTPLOGIN_SMTP_URL: user name and password go together"},
		{"none to remote", map[string]string{"OTPLOGIN_SMTP_HOST": "smtp.example.com", "OTPLOGIN_SMTP_SECURITY": "none", "OTPLOGIN_SMTP_PASSWORD": pw, "OTPLOGIN_SMTP_USERNAME": "a@b.example"}, "OTPLOGIN_SMTP_SECURITY"},
		{"bad security", map[string]string{"OTPLOGIN_SMTP_HOST": "h.example", "OTPLOGIN_SMTP_SECURITY": "maybe"}, "OTPLOGIN_SMTP_SECURITY: \"maybe\""},
		{"bad timeout", map[string]string{"OTPLOGIN_SMTP_TIMEOUT": "soon"}, "OTPLOGIN_SMTP_TIMEOUT: \"soon\""},
		{"timeout too long", map[string]string{"OTPLOGIN_SMTP_TIMEOUT": "1h"}, "OTPLOGIN_SMTP_TIMEOUT"},
		{"timeout too short", map[string]string{"OTPLOGIN_SMTP_TIMEOUT": "10ms"}, "OTPLOGIN_SMTP_TIMEOUT"},
		{"url and host", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://h.example", "OTPLOGIN_SMTP_HOST": "h.example"}, "OTPLOGIN_SMTP_URL"},
		{"password without host", map[string]string{"OTPLOGIN_SMTP_PASSWORD": pw}, "OTPLOGIN_SMTP_PASSWORD"},
		{"password without user", map[string]string{"OTPLOGIN_SMTP_HOST": "h.example", "OTPLOGIN_SMTP_PASSWORD": pw, "OTPLOGIN_MAIL_FROM": "a@b.example"}, "OTPLOGIN_SMTP_USERNAME"},
		{"no from", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://bot:" + pw + "@h.example"}, "OTPLOGIN_MAIL_FROM"},
		{"bad from", map[string]string{"OTPLOGIN_MAIL_FROM": "not an address"}, "OTPLOGIN_MAIL_FROM"},
		{"from with crlf", map[string]string{"OTPLOGIN_MAIL_FROM": "a@b.example\r\nBcc: x@evil.example"}, "OTPLOGIN_MAIL_FROM"},
		{"from name with comma", map[string]string{"OTPLOGIN_MAIL_FROM": `"Example, Inc." <a@b.example>`}, "OTPLOGIN_MAIL_FROM"},
		{"host with a port", map[string]string{"OTPLOGIN_SMTP_HOST": "smtp.example.com:587", "OTPLOGIN_MAIL_FROM": "a@b.example"}, "OTPLOGIN_SMTP_HOST: \"smtp.example.com:587\": give the port in OTPLOGIN_SMTP_PORT"},
		{"bracketed host", map[string]string{"OTPLOGIN_SMTP_HOST": "[::1]", "OTPLOGIN_MAIL_FROM": "a@b.example"}, "OTPLOGIN_SMTP_HOST"},
		{"starttls on 465", map[string]string{"OTPLOGIN_SMTP_URL": "smtp://u:" + pw + "@smtp.example.com:465", "OTPLOGIN_MAIL_FROM": "a@b.example"}, "OTPLOGIN_SMTP_URL: port 465 expects TLS"},
		{"localhost helo to remote", map[string]string{"OTPLOGIN_SMTP_HOST": "smtp.example.com", "OTPLOGIN_SMTP_HELO": "localhost", "OTPLOGIN_MAIL_FROM": "a@b.example"}, "OTPLOGIN_SMTP_HELO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mail.ConfigFromEnv(env(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.setting) {
				t.Errorf("error %q does not start with %q", msg, tc.setting)
			}
			if strings.Contains(msg, pw) || strings.Contains(msg, "hunter2") {
				t.Errorf("error %q contains the password", msg)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error %q is not one line", msg)
			}
		})
	}
}

func TestSetURLKeepsMessageSettings(t *testing.T) {
	c := mail.Config{Host: "old.example", Username: "old", Password: "old", From: "a@b.example", Subject: "S", Timeout: 5 * time.Second}
	if err := c.SetURL("smtps://new%2Buser:pw@new.example:2465"); err != nil {
		t.Fatal(err)
	}
	want := mail.Config{Host: "new.example", Port: 2465, Username: "new+user", Password: "pw", Security: mail.ImplicitTLS, From: "a@b.example", Subject: "S", Timeout: 5 * time.Second}
	if c != want {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if got := c.Addr(); got != "new.example:2465" {
		t.Errorf("Addr = %q", got)
	}
}

func TestNewCAFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{bad, filepath.Join(dir, "missing.pem")} {
		_, err := mail.New(mail.Config{Host: "h.example", From: "a@b.example", CAFile: file})
		if err == nil || !strings.HasPrefix(err.Error(), "OTPLOGIN_SMTP_CA_FILE") {
			t.Errorf("New with CA file %s: %v, want an error naming OTPLOGIN_SMTP_CA_FILE", file, err)
		}
	}
}

func TestCodeFromMessage(t *testing.T) {
	for _, tc := range []struct {
		name, raw, want string
	}{
		{
			name: "multipart quoted-printable",
			raw: "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n" +
				"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
				"Your code is:=\r\n\r\n\r\n0012345\r\n\r\nIt expires in 5 minutes, at 14:07 UTC.\r\n--b\r\n" +
				"Content-Type: text/html; charset=UTF-8\r\n\r\n<p>999999</p>\r\n--b--\r\n",
			want: "0012345",
		},
		{
			name: "single text part",
			raw:  "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCode:\r\n 654321 \r\n",
			want: "654321",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mail.CodeFromMessage([]byte(tc.raw))
			if err != nil || got != tc.want {
				t.Errorf("CodeFromMessage = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	for _, raw := range []string{"", "Content-Type: text/plain\r\n\r\nno digits here 12\r\n", "Content-Type: image/png\r\n\r\n123456\r\n"} {
		if got, err := mail.CodeFromMessage([]byte(raw)); err == nil {
			t.Errorf("CodeFromMessage(%q) = %q, want an error", raw, got)
		}
	}
}

func TestConfigPrintsNoPassword(t *testing.T) {
	const pw = "s3cret-Pa55"
	c := mail.Config{Host: "smtp.example.com", Username: "bot@example.com", Password: pw, From: "Bot <bot@example.com>"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(verb, c)
		if strings.Contains(got, pw) {
			t.Errorf("Sprintf(%s) = %q shows the password", verb, got)
		}
	}
	if got, want := c.String(), `smtp://bot%40example.com:***@smtp.example.com:587 from="Bot <bot@example.com>"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"smtp://u:p@h:587", "smtps://u%40x:p%2F@h", "smtp://127.0.0.1:25?security=none",
		"smtp://u:abcd efgh ijkl mnop@h", "smtp://u:p#x@h", "smtp://[::1]:25", "smtp://h:99999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := mail.ParseURL(raw)
		if err != nil {
			if u, perr := url.Parse(raw); perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && len(pw) >= 4 && strings.Contains(err.Error(), pw) {
					t.Fatalf("error %q contains the password", err)
				}
			}
			return
		}
		if c.Host == "" || !c.Configured() {
			t.Fatalf("ParseURL(%q) succeeded without a host", raw)
		}
		if c.Port < 0 || c.Port > 65535 {
			t.Fatalf("port %d", c.Port)
		}
		switch c.Security {
		case mail.StartTLS, mail.ImplicitTLS, mail.NoTLS:
		default:
			t.Fatalf("security %q", c.Security)
		}
	})
}

// TestSenderTimeout checks the bound the UI's own wait is derived from.
func TestSenderTimeout(t *testing.T) {
	for _, tc := range []struct {
		set, want time.Duration
	}{{0, mail.DefaultTimeout}, {7 * time.Second, 7 * time.Second}} {
		s, err := mail.New(mail.Config{Host: "smtp.example.com", From: "otp@example.com", Timeout: tc.set})
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Timeout(); got != tc.want {
			t.Errorf("Timeout with %v set = %v, want %v", tc.set, got, tc.want)
		}
		s.Close()
	}
}
