package mail_test

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otplogin/otplogin/mail"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		want      mail.Config
	}{
		{
			name: "gmail url with app password spaces",
			url:  "smtp://me%40gmail.com:abcd%20efgh%20ijkl%20mnop@smtp.gmail.com:587",
			want: mail.Config{Host: "smtp.gmail.com", Port: 587, Username: "me@gmail.com", Password: "abcdefghijklmnop", Security: mail.StartTLS},
		},
		{
			name: "percent-encoded password keeps its specials",
			url:  "smtps://bot:p%40ss%2Fw%3Ard%23%20x@mail.example.com",
			want: mail.Config{Host: "mail.example.com", Username: "bot", Password: "p@ss/w:rd# x", Security: mail.ImplicitTLS},
		},
		{
			name: "loopback cleartext on request",
			url:  "smtp://127.0.0.1:2525/?security=none",
			want: mail.Config{Host: "127.0.0.1", Port: 2525, Security: mail.NoTLS},
		},
		{
			name: "IPv6 loopback, cleartext on request",
			url:  "smtp://[::1]:2525/?security=none",
			want: mail.Config{Host: "::1", Port: 2525, Security: mail.NoTLS},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mail.ParseURL(tc.url)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if !got.Configured() {
				t.Error("not Configured()")
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	const pw = "hunter2-Secret"
	for _, tc := range []struct {
		name, url string
	}{
		{"bad port", "smtp://u:" + pw + "@h.example:abc"},
		{"port out of range", "smtp://u:" + pw + "@h.example:70000"},
		{"bad escape", "smtp://u:" + pw + "%zz@h.example:587"},
		{"unescaped # in password", "smtp://u:" + pw + "#x@h.example"},
		{"bad scheme", "http://u:" + pw + "@h.example"},
		{"no host", "smtp://u:" + pw + "@:587"},
		{"unknown query", "smtp://u:" + pw + "@h.example?skip_verify=true"},
		{"none with smtps", "smtps://u:" + pw + "@127.0.0.1?security=none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mail.ParseURL(tc.url)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); strings.Contains(msg, pw) || strings.Contains(msg, "hunter2") || strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error %q contains the password or is not one line", msg)
			}
		})
	}
}

// TestValidateNamesTheField checks that every refusal names the Config
// field at fault, which callers map back to the setting they read it from.
func TestValidateNamesTheField(t *testing.T) {
	const pw = "hunter2-Secret"
	server := func(c mail.Config) mail.Config {
		if c.Host == "" {
			c.Host = "smtp.example.com"
		}
		if c.From == "" && c.Username == "" {
			c.From = "a@b.example"
		}
		return c
	}
	for _, tc := range []struct {
		name  string
		cfg   mail.Config
		field string
	}{
		{"timeout too long", mail.Config{Timeout: time.Hour}, "Timeout"},
		{"timeout too short", mail.Config{Timeout: 10 * time.Millisecond}, "Timeout"},
		{"negative idle timeout", mail.Config{IdleTimeout: -time.Second}, "IdleTimeout"},
		{"subject of two lines", mail.Config{Subject: "a\r\nBcc: x@evil.example"}, "Subject"},
		{"bad from", mail.Config{From: "not an address"}, "From"},
		{"from with crlf", mail.Config{From: "a@b.example\r\nBcc: x@evil.example"}, "From"},
		{"from name with comma", mail.Config{From: `"Example, Inc." <a@b.example>`}, "From"},
		{"no from", server(mail.Config{Username: "bot", Password: pw}), "From"},
		{"host with a port", server(mail.Config{Host: "smtp.example.com:587"}), "Host"},
		{"bracketed host", server(mail.Config{Host: "[::1]"}), "Host"},
		{"port out of range", server(mail.Config{Port: 70000}), "Port"},
		{"starttls on 465", server(mail.Config{Port: 465, Security: mail.StartTLS}), "Security"},
		{"none to remote", server(mail.Config{Security: mail.NoTLS, Username: "a@b.example", Password: pw}), "Security"},
		{"unknown security", server(mail.Config{Security: "maybe"}), "Security"},
		{"password without user", server(mail.Config{Password: pw}), "Username"},
		{"user without password", server(mail.Config{Username: "a@b.example"}), "Username"},
		{"user with a newline", server(mail.Config{Username: "a\nb", Password: pw}), "Username"},
		{"password with a newline", server(mail.Config{Username: "a@b.example", Password: pw + "\r"}), "Password"},
		{"localhost helo to remote", server(mail.Config{HeloName: "localhost"}), "HeloName"},
		{"helo with a space", server(mail.Config{HeloName: "mx example"}), "HeloName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var fe *mail.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Validate = %v, want a *FieldError for %s", err, tc.field)
			}
			if msg := err.Error(); strings.Contains(msg, pw) || strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error %q contains the password or is not one line", msg)
			}
		})
	}
	for _, ok := range []mail.Config{
		{},
		{From: "otp@example.com", Subject: "Your login code", Timeout: 45 * time.Second},
		server(mail.Config{Port: 465, Username: "bot@example.com", Password: "pw"}),
		server(mail.Config{Host: "127.0.0.1", Security: mail.NoTLS, HeloName: "localhost"}),
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%v) = %v, want nil", ok, err)
		}
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
		var fe *mail.FieldError
		if !errors.As(err, &fe) || fe.Field != "CAFile" {
			t.Errorf("New with CA file %s: %v, want a *FieldError for CAFile", file, err)
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
				// The error may name the scheme, host, port or query: a
				// password that is also one of those ("AAAA://:aaaa@", whose
				// scheme reads "aaaa") is not given away by it.
				shown := strings.ToLower(u.Scheme + " " + u.Host + " " + u.RawQuery + " " + u.Path + " " + u.User.Username())
				pw, ok := u.User.Password()
				if ok && len(pw) >= 4 && strings.Contains(err.Error(), pw) && !strings.Contains(shown, strings.ToLower(pw)) {
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
