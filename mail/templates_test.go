package mail_test

import (
	"bytes"
	"errors"
	"mime"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otplogin/otplogin/internal/smtptest"
	"github.com/otplogin/otplogin/mail"
)

// received sends one code through a Sender made from cfg and returns the
// message the server got: subject, text and HTML.
func received(t *testing.T, cfg mail.Config) (subject, text, html string) {
	t.Helper()
	srv := smtptest.Start(t, smtptest.Options{})
	c := configFor(srv)
	c.AppName, c.Subject, c.TemplateDir = cfg.AppName, cfg.Subject, cfg.TemplateDir
	if err := send(t, newSender(t, c), nil); err != nil {
		t.Fatalf("SendCode: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages", len(msgs))
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	dec := new(mime.WordDecoder)
	subject, err = dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	text, html = parts(t, msg)
	return subject, text, html
}

// TestAppName checks that the application name is in the subject and in
// both parts of the code email, escaped in the HTML, and that an operator's
// subject wins.
func TestAppName(t *testing.T) {
	subject, text, html := received(t, mail.Config{AppName: "Acme <Login>"})
	if subject != "Your Acme <Login> verification code" {
		t.Errorf("subject %q", subject)
	}
	if !strings.Contains(text, "Your Acme <Login> verification code is:") {
		t.Errorf("text part does not name the app:\n%s", text)
	}
	if !strings.Contains(html, "Your Acme &lt;Login&gt; verification code is:") || strings.Contains(html, "<Login>") {
		t.Errorf("HTML part does not name the app, escaped:\n%s", html)
	}
	if subject, _, _ := received(t, mail.Config{AppName: "Acme", Subject: "Sign in to Acme"}); subject != "Sign in to Acme" {
		t.Errorf("subject %q, want the operator's", subject)
	}
	if subject, text, _ := received(t, mail.Config{}); subject != "Your otplogin verification code" || !strings.Contains(text, "Your otplogin verification code is:") {
		t.Errorf("default name: subject %q, text %q", subject, text)
	}
	for _, bad := range []string{"Acme\r\nBcc: x@evil.example", "Acme\x1b[31m", strings.Repeat("a", mail.MaxAppName+1)} {
		var fe *mail.FieldError
		if err := (mail.Config{AppName: bad}).Validate(); !errors.As(err, &fe) || fe.Field != "AppName" {
			t.Errorf("AppName %q: %v, want a FieldError for AppName", bad, err)
		}
	}
}

// writeTemplates makes a folder holding files (name -> text).
func writeTemplates(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	goodText = "{{.AppName}} code:\n\n  {{.Code}}\n\nValid for {{.ValidFor}}.\n"
	goodHTML = "<p>{{.AppName}}</p>\n<p><b>{{.Code}}</b></p>\n<p>Until {{.Expires}}.</p>\n"
)

// TestTemplateDir checks that an operator's templates replace the built-in
// ones, each on its own.
func TestTemplateDir(t *testing.T) {
	dir := writeTemplates(t, map[string]string{mail.TextTemplateFile: goodText, mail.HTMLTemplateFile: goodHTML})
	_, text, html := received(t, mail.Config{AppName: "Acme & Co", TemplateDir: dir})
	if want := "Acme & Co code:\r\n\r\n  " + testCode + "\r\n\r\nValid for 5 minutes."; !strings.Contains(text, want) {
		t.Errorf("text part %q, want %q", text, want)
	}
	if !strings.Contains(html, "<p>Acme &amp; Co</p>") || !strings.Contains(html, "<b>"+testCode+"</b>") || !strings.Contains(html, " UTC.</p>") {
		t.Errorf("HTML part %q", html)
	}

	// Only the text: the HTML stays the built-in one.
	dir = writeTemplates(t, map[string]string{mail.TextTemplateFile: goodText})
	_, text, html = received(t, mail.Config{AppName: "Acme", TemplateDir: dir})
	if !strings.HasPrefix(text, "Acme code:") || !strings.Contains(html, "Your Acme verification code is:") {
		t.Errorf("text %q, HTML %q: want the operator's text and the built-in HTML", text, html)
	}
}

// TestTemplateDirRefused checks that New refuses templates that would not
// work, with an error naming the file and, where there is one, the line.
func TestTemplateDirRefused(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		dir   string // instead of files
		want  string // the error, after the folder's path
	}{
		{"parse error, with its line", map[string]string{mail.HTMLTemplateFile: "<p>\n{{.Code}}\n{{.Expires}\n</p>\n"},
			"", "/code.html:3: bad character U+007D '}'"},
		{"unknown field, with its line", map[string]string{mail.TextTemplateFile: "{{.Code}}\n{{.ValidFor}}\n{{.Secret}}\n"},
			"", "/code.txt:3:2: executing"},
		{"no code", map[string]string{mail.TextTemplateFile: "Expires in {{.ValidFor}}.\n"},
			"", "/code.txt does not show the code ({{.Code}})"},
		{"no expiry", map[string]string{mail.HTMLTemplateFile: "<b>{{.Code}}</b>"},
			"", "/code.html does not say when the code expires"},
		{"code inside a sentence", map[string]string{mail.TextTemplateFile: "Your code is {{.Code}}, valid {{.ValidFor}}.\n"},
			"", "/code.txt must show the code ({{.Code}}) on a line of its own"},
		{"ambiguous HTML context, with its line", map[string]string{mail.HTMLTemplateFile: "<p>{{.Code}}, {{.ValidFor}}</p>\n<a href='{{if .Code}}/a{{else}}/b?q={{end}}{{.Code}}'>x</a>\n"},
			"", "/code.html:2:45: {{.Code}} appears in an ambiguous context within a URL"},
		{"too large", map[string]string{mail.TextTemplateFile: strings.Repeat("x", 300<<10)},
			"", "/code.txt: larger than 256 KiB"},
		{"no template", map[string]string{"other.txt": "{{.Code}}"}, "", " holds neither code.txt nor code.html"},
		{"not a folder", nil, notADir, " is not a folder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = writeTemplates(t, tc.files)
			}
			cfg := configFor(smtptest.Start(t, smtptest.Options{}))
			cfg.TemplateDir = dir
			s, err := mail.New(cfg)
			if err == nil {
				s.Close()
				t.Fatal("New accepted the templates")
			}
			var fe *mail.FieldError
			if !errors.As(err, &fe) || fe.Field != "TemplateDir" {
				t.Fatalf("err = %v, want a FieldError for TemplateDir", err)
			}
			if got := fe.Err.Error(); !strings.HasPrefix(got, dir+tc.want) {
				t.Errorf("err = %q, want it to start with %q", got, dir+tc.want)
			}
		})
	}
}

// TestPing checks the readiness check: it reaches the relay without sending
// anything, reuses a kept connection, and names the stage that failed.
func TestPing(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	s := newSender(t, configFor(srv))
	for range 2 {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}
	if n, m := srv.Connections(), srv.MailCommands(); n != 1 || m != 0 {
		t.Errorf("%d connections and %d MAIL commands, want one connection, kept, and no mail", n, m)
	}

	bad := configFor(srv)
	bad.Password = "wrong"
	var se *mail.SendError
	if err := newSender(t, bad).Ping(t.Context()); !errors.As(err, &se) || se.Stage != mail.StageAuth {
		t.Errorf("wrong password: %v, want a SendError at auth", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := configFor(srv)
	closed.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := newSender(t, closed).Ping(t.Context()); !errors.As(err, &se) || se.Stage != mail.StageConnect {
		t.Errorf("nothing listening: %v, want a SendError at connect", err)
	}
}
