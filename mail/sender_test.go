package mail_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/otplogin/otplogin/internal/leakcheck"
	"github.com/otplogin/otplogin/internal/smtptest"
	"github.com/otplogin/otplogin/mail"
)

const (
	testCode = "482915"
	testTo   = "alice@example.com"
)

// fastRetry keeps retry tests quick; the backoff logic is the same.
var fastRetry = mail.Retry{Attempts: 3, Base: time.Millisecond, Max: 2 * time.Millisecond}

func configFor(srv *smtptest.Server) mail.Config {
	return mail.Config{
		Host:     srv.Host(),
		Port:     srv.Port(),
		Username: "user",
		Password: "secret",
		From:     `"Verify Bot" <otp@example.org>`,
		RootCAs:  srv.RootCAs,
		Retry:    fastRetry,
	}
}

func newSender(t *testing.T, cfg mail.Config) *mail.Sender {
	t.Helper()
	s, err := mail.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func send(t *testing.T, s *mail.Sender, ctx context.Context) error {
	t.Helper()
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
	}
	return s.SendCode(ctx, testTo, testCode, time.Now().Add(5*time.Minute))
}

// parts returns the decoded text/plain and text/html parts.
func parts(t *testing.T, msg *netmail.Message) (text, html string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return text, html
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		switch ct := p.Header.Get("Content-Type"); ct {
		case "text/plain; charset=UTF-8":
			text = string(b)
		case "text/html; charset=UTF-8":
			html = string(b)
		default:
			t.Errorf("unexpected part %q", ct)
		}
	}
}

func TestSendCodeDelivers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     smtptest.Options
		security mail.Security
		helo     string
		wantHelo string
		wantMech string
		caFile   bool
	}{
		{name: "starttls plain", wantHelo: "example.org", wantMech: "PLAIN"},
		{name: "implicit tls", opts: smtptest.Options{TLS: smtptest.ImplicitTLS}, security: mail.ImplicitTLS, wantHelo: "example.org", wantMech: "PLAIN"},
		{name: "login only (Office 365)", opts: smtptest.Options{Mechanisms: []string{"LOGIN"}}, wantHelo: "example.org", wantMech: "LOGIN"},
		{name: "custom ehlo name", helo: "mx.example.net", wantHelo: "mx.example.net", wantMech: "PLAIN"},
		{name: "extra CA file on top of system roots", caFile: true, wantHelo: "example.org", wantMech: "PLAIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			srv := smtptest.Start(t, tc.opts)
			cfg := configFor(srv)
			cfg.Security = tc.security
			cfg.HeloName = tc.helo
			if tc.caFile {
				cfg.RootCAs = nil
				cfg.CAFile = filepath.Join(t.TempDir(), "ca.pem")
				if err := os.WriteFile(cfg.CAFile, srv.CertPEM, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := send(t, newSender(t, cfg), nil); err != nil {
				t.Fatalf("SendCode: %v", err)
			}
			if n := srv.Connections(); n != 1 {
				t.Errorf("connections = %d, want 1", n)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.From != "otp@example.org" || len(m.To) != 1 || m.To[0] != testTo {
				t.Errorf("envelope %q -> %q", m.From, m.To)
			}
			var delivering *smtptest.Session
			for _, s := range srv.Sessions() {
				if s.From != "" || s.AuthUser != "" {
					delivering = &s
				}
			}
			if delivering == nil {
				t.Fatal("no session authenticated")
			}
			if !delivering.TLS || delivering.AuthUser != "user" || delivering.AuthMech != tc.wantMech || delivering.Helo != tc.wantHelo {
				t.Errorf("session TLS=%v user=%q mech=%q helo=%q; want TLS, user, %s, %q",
					delivering.TLS, delivering.AuthUser, delivering.AuthMech, delivering.Helo, tc.wantMech, tc.wantHelo)
			}
			checkMessage(t, m.Data)
		})
	}
}

func checkMessage(t *testing.T, raw []byte) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	if got := h.Get("Subject"); got != mail.DefaultSubject("") {
		t.Errorf("Subject = %q, want %q (never the code)", got, mail.DefaultSubject(""))
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != "Verify Bot" || from[0].Address != "otp@example.org" {
		t.Errorf("From = %v, %v", from, err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != testTo {
		t.Errorf("To = %v, %v", to, err)
	}
	if id := h.Get("Message-Id"); !strings.HasSuffix(id, "@example.org>") || len(id) < 20 {
		t.Errorf("Message-Id = %q, want <random@example.org>", id)
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	for _, k := range []string{"Bcc", "Cc"} {
		if v, ok := h[k]; ok {
			t.Errorf("%s header present: %q", k, v)
		}
	}
	text, html := parts(t, msg)
	if !strings.Contains(text, "\n"+testCode+"\r\n") {
		t.Errorf("text part lacks the code on its own line:\n%s", text)
	}
	if !strings.Contains(html, testCode) {
		t.Errorf("html part lacks the code:\n%s", html)
	}
	for _, want := range []string{"expires in 5 minutes", "UTC", "did not ask"} {
		if !strings.Contains(text, want) || !strings.Contains(html, want) {
			t.Errorf("a part lacks %q", want)
		}
	}
	if code, err := mail.CodeFromMessage(raw); err != nil || code != testCode {
		t.Errorf("CodeFromMessage = %q, %v", code, err)
	}
}

// TestFaults is the failure matrix: each case checks the typed error and how
// many connections the sender made.
func TestFaults(t *testing.T) {
	type check struct {
		stage           mail.Stage
		code            int
		attempts        int
		maybe, rejected bool
		is              error
	}
	// failFirst fails the first n connections with err.
	failFirst := func(n int, err error) func(int, *smtp.Conn) error {
		return func(conn int, _ *smtp.Conn) error {
			if conn <= n {
				return err
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name     string
		opts     smtptest.Options
		cfg      func(*mail.Config)
		ctx      func(context.Context) (context.Context, context.CancelFunc)
		ok       bool  // delivered in the end
		conns    int   // connections the server saw
		messages int   // messages the server accepted
		want     check // when !ok
		noMail   bool  // the server must never have seen MAIL
	}{
		{
			name: "421 at MAIL then success", ok: true, conns: 2, messages: 1,
			opts: smtptest.Options{Hooks: smtptest.Hooks{Mail: failFirst(1, smtptest.Reply(421, "try later"))}},
		},
		{
			name: "450 at RCPT twice then success", ok: true, conns: 3, messages: 1,
			opts: smtptest.Options{Hooks: smtptest.Hooks{Rcpt: func(c int, _ string) error { return failFirst(2, smtptest.Reply(450, "mailbox busy"))(c, nil) }}},
		},
		{
			name: "450 every time gives up after 3", conns: 3,
			opts: smtptest.Options{Hooks: smtptest.Hooks{Rcpt: func(int, string) error { return smtptest.Reply(450, "mailbox busy") }}},
			want: check{stage: mail.StageRcpt, code: 450, attempts: 3},
		},
		{
			name: "drop at MAIL is retried", ok: true, conns: 2, messages: 1,
			opts: smtptest.Options{Hooks: smtptest.Hooks{Mail: func(conn int, c *smtp.Conn) error {
				if conn == 1 {
					return smtptest.Drop(c)
				}
				return nil
			}}},
		},
		{
			name: "550 at RCPT is final and rejects the address", conns: 1,
			opts: smtptest.Options{Hooks: smtptest.Hooks{Rcpt: func(_ int, to string) error {
				return smtptest.Reply(550, "<"+to+">: Recipient address rejected")
			}}},
			want: check{stage: mail.StageRcpt, code: 550, attempts: 1, rejected: true},
		},
		{
			name: "554 5.7.1 relay denied at RCPT is final, not the address's fault", conns: 1,
			opts: smtptest.Options{Hooks: smtptest.Hooks{Rcpt: func(int, string) error {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relay access denied"}
			}}},
			want: check{stage: mail.StageRcpt, code: 554, attempts: 1},
		},
		{
			name: "554 at end of DATA is final", conns: 1,
			opts: smtptest.Options{Hooks: smtptest.Hooks{Data: func(context.Context, int, *smtp.Conn) error {
				return smtptest.Reply(554, "message refused")
			}}},
			want: check{stage: mail.StageDataEnd, code: 554, attempts: 1},
		},
		{
			name: "535 bad password is final", conns: 1, noMail: true,
			cfg:  func(c *mail.Config) { c.Password = "wrong-password" },
			want: check{stage: mail.StageAuth, code: 535, attempts: 1},
		},
		{
			name: "STARTTLS not offered: nothing sent", conns: 1, noMail: true,
			opts: smtptest.Options{TLS: smtptest.NoStartTLS},
			want: check{stage: mail.StageTLS, attempts: 1, is: mail.ErrNoStartTLS},
		},
		{
			name: "untrusted certificate", conns: 1, noMail: true,
			cfg:  func(c *mail.Config) { c.RootCAs = nil }, // system roots do not know it
			want: check{stage: mail.StageTLS, attempts: 1},
		},
		{
			name: "implicit TLS port spoken to with STARTTLS", conns: 1, noMail: true,
			opts: smtptest.Options{TLS: smtptest.ImplicitTLS},
			cfg:  func(c *mail.Config) { c.Security = mail.StartTLS },
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 300*time.Millisecond)
			},
			want: check{stage: mail.StageConnect, attempts: 1, is: context.DeadlineExceeded},
		},
		{
			name: "STARTTLS port spoken to with implicit TLS", conns: 1, noMail: true,
			cfg:  func(c *mail.Config) { c.Security = mail.ImplicitTLS },
			want: check{stage: mail.StageTLS, attempts: 1},
		},
		{
			name: "stall after DATA hits the deadline, ambiguous", conns: 1,
			opts: smtptest.Options{Hooks: smtptest.Hooks{Data: func(ctx context.Context, _ int, _ *smtp.Conn) error {
				<-ctx.Done() // released when the server closes at cleanup
				return nil
			}}},
			// Long enough for the stages before DATA on a loaded machine
			// under -race: the deadline must fall in the stall.
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 2*time.Second)
			},
			want: check{stage: mail.StageDataEnd, attempts: 1, maybe: true, is: context.DeadlineExceeded},
		},
		{
			name: "drop after the message was read, ambiguous", conns: 1,
			opts: smtptest.Options{Hooks: smtptest.Hooks{Data: func(_ context.Context, _ int, c *smtp.Conn) error {
				return smtptest.Drop(c)
			}}},
			want: check{stage: mail.StageDataEnd, attempts: 1, maybe: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			srv := smtptest.Start(t, tc.opts)
			cfg := configFor(srv)
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if tc.ctx != nil {
				ctx, cancel = tc.ctx(ctx)
				defer cancel()
			}
			err := send(t, newSender(t, cfg), ctx)
			if n := srv.Connections(); n != tc.conns {
				t.Errorf("connections = %d, want %d", n, tc.conns)
			}
			if n := len(srv.Messages()); n != tc.messages {
				t.Errorf("messages accepted = %d, want %d", n, tc.messages)
			}
			if tc.noMail && srv.MailCommands() != 0 {
				t.Errorf("server got %d MAIL commands, want none", srv.MailCommands())
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("SendCode: %v", err)
				}
				return
			}
			checkSendError(t, err, tc.want.stage, tc.want.code, tc.want.attempts, tc.want.maybe, tc.want.rejected, tc.want.is)
		})
	}
}

func checkSendError(t *testing.T, err error, stage mail.Stage, code, attempts int, maybe, rejected bool, is error) {
	t.Helper()
	var se *mail.SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *mail.SendError", err, err)
	}
	if se.Stage != stage || se.Code != code || se.Attempts != attempts {
		t.Errorf("stage=%s code=%d attempts=%d, want %s %d %d (%v)", se.Stage, se.Code, se.Attempts, stage, code, attempts, err)
	}
	if se.MaybeDelivered() != maybe || se.AddressRejected() != rejected {
		t.Errorf("MaybeDelivered=%v AddressRejected=%v, want %v %v (%v)",
			se.MaybeDelivered(), se.AddressRejected(), maybe, rejected, err)
	}
	if is != nil && !errors.Is(err, is) {
		t.Errorf("errors.Is(%v, %v) = false", err, is)
	}
	text := err.Error()
	t.Logf("operator sees: %s", text)
	for _, secret := range []string{testCode, "secret", "wrong-password", testTo} {
		if strings.Contains(text, secret) {
			t.Errorf("error text %q contains %q", text, secret)
		}
	}
	if !strings.Contains(text, string(stage)) {
		t.Errorf("error text %q does not name the stage %s", text, stage)
	}
}

func TestCancel(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hooks func(cancel context.CancelFunc) smtptest.Hooks
		stage mail.Stage
		maybe bool
	}{
		{
			name: "during MAIL: not retried",
			hooks: func(cancel context.CancelFunc) smtptest.Hooks {
				return smtptest.Hooks{Mail: func(int, *smtp.Conn) error { cancel(); return smtptest.Reply(421, "going away") }}
			},
			stage: mail.StageMail,
		},
		{
			name: "waiting for the DATA reply: ambiguous",
			hooks: func(cancel context.CancelFunc) smtptest.Hooks {
				return smtptest.Hooks{Data: func(ctx context.Context, _ int, _ *smtp.Conn) error { cancel(); <-ctx.Done(); return nil }}
			},
			stage: mail.StageDataEnd, maybe: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			srv := smtptest.Start(t, smtptest.Options{Hooks: tc.hooks(cancel)})
			err := send(t, newSender(t, configFor(srv)), ctx)
			var se *mail.SendError
			if !errors.As(err, &se) || !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want a *SendError matching context.Canceled", err)
			}
			if se.Stage != tc.stage || se.Attempts != 1 || se.MaybeDelivered() != tc.maybe {
				t.Errorf("stage=%s attempts=%d maybe=%v, want %s 1 %v", se.Stage, se.Attempts, se.MaybeDelivered(), tc.stage, tc.maybe)
			}
			if n := srv.Connections(); n != 1 {
				t.Errorf("connections = %d, want 1", n)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	leakcheck.Check(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	err = send(t, newSender(t, mail.Config{
		Host: "127.0.0.1", Port: port, From: "otp@example.org", Retry: fastRetry,
	}), nil)
	checkSendError(t, err, mail.StageConnect, 0, 3, false, false, nil)
}

func TestBadRecipientNeverConnects(t *testing.T) {
	leakcheck.Check(t)
	srv := smtptest.Start(t, smtptest.Options{})
	s := newSender(t, configFor(srv))
	for _, to := range []string{
		"a@x\r\nBcc: v@evil.example",
		"a@x\nBcc: v@evil.example",
		"Mallory <a@x.example>",
		"a@x.example, v@evil.example",
		"not an address",
		"",
	} {
		err := s.SendCode(t.Context(), to, testCode, time.Now().Add(time.Minute))
		var se *mail.SendError
		if !errors.As(err, &se) || se.Stage != mail.StageCompose || !se.AddressRejected() || !errors.Is(err, mail.ErrInvalidAddress) {
			t.Errorf("SendCode(%q) = %v, want a compose error that rejects the address", to, err)
		}
		if err != nil && strings.Contains(err.Error(), testCode) {
			t.Errorf("error %q contains the code", err)
		}
	}
	if n := srv.Connections(); n != 0 {
		t.Errorf("connections = %d, want 0", n)
	}
}

func TestMailTest(t *testing.T) {
	leakcheck.Check(t)
	srv := smtptest.Start(t, smtptest.Options{})
	s := newSender(t, configFor(srv))
	if err := s.Test(t.Context(), testTo); err != nil {
		t.Fatalf("Test: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || !bytes.Contains(msgs[0].Data, []byte("otplogin mail-test")) {
		t.Fatalf("server got %d messages, want the test message", len(msgs))
	}

	// With a wrong password, the error says where and what the server said.
	cfg := configFor(srv)
	cfg.Password = "wrong-password"
	err := newSender(t, cfg).Test(t.Context(), testTo)
	if err == nil || !strings.Contains(err.Error(), "auth") || !strings.Contains(err.Error(), "535") {
		t.Errorf("Test with a bad password = %v, want the auth stage and the 535 reply", err)
	}
}

// The otp package reads these through its Sender interface and errors.As;
// mail must not import otp, so the shapes are checked here.
var (
	_ interface {
		SendCode(ctx context.Context, to, code string, expiresAt time.Time) error
	} = (*mail.Sender)(nil)
	_ interface {
		MaybeDelivered() bool
		AddressRejected() bool
	} = (*mail.SendError)(nil)
)

func TestAddressRejected(t *testing.T) {
	for _, tc := range []struct {
		stage mail.Stage
		code  int
		msg   string
		want  bool
	}{
		{mail.StageRcpt, 550, "5.1.1 <a@example.com>: User unknown", true},
		{mail.StageRcpt, 553, "5.1.3 Bad destination mailbox address syntax", true},
		{mail.StageRcpt, 552, "5.2.2 Mailbox full", true},
		{mail.StageRcpt, 550, "No such user here", true},
		{mail.StageRcpt, 550, "5.0.0 rejected", true},
		{mail.StageRcpt, 554, "5.7.1 <a@example.com>: Relay access denied", false},
		{mail.StageRcpt, 550, "5.7.1 Client host rejected", false},
		{mail.StageRcpt, 554, "Transaction failed", false},
		{mail.StageRcpt, 450, "4.2.1 Mailbox busy", false},
		{mail.StageMail, 550, "5.1.8 Bad sender address", false},
		{mail.StageDataEnd, 550, "5.1.1 User unknown", false},
	} {
		err := &mail.SendError{Stage: tc.stage, Code: tc.code, Attempts: 1, Err: &textproto.Error{Code: tc.code, Msg: tc.msg}}
		if got := err.AddressRejected(); got != tc.want {
			t.Errorf("%s %d %q: AddressRejected = %v, want %v", tc.stage, tc.code, tc.msg, got, tc.want)
		}
	}
}

// TestEndlessGreeting: a peer that answers with an endless line (a hostile
// server, or anyone on the path before STARTTLS) is cut off after a bounded
// read instead of being buffered until the deadline. go-smtp cannot send
// such a reply, so a raw listener stands in for the server.
func TestEndlessGreeting(t *testing.T) {
	leakcheck.Check(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const offered = 64 << 20 // the peer stops here so a failing test stays small
	written := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			written <- -1
			return
		}
		defer c.Close()
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		n, _ := c.Write([]byte("220 "))
		total := int64(n)
		for total < offered {
			n, err := c.Write(chunk)
			total += int64(n)
			if err != nil {
				break
			}
		}
		written <- total
		_, _ = io.Copy(io.Discard, c) // hold the line open until the client leaves
	}()
	s := newSender(t, mail.Config{
		Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, From: "otp@example.org",
		Timeout: 5 * time.Second, Retry: mail.Retry{Attempts: 1},
	})
	err = send(t, s, nil)
	var se *mail.SendError
	if !errors.As(err, &se) || se.Stage != mail.StageConnect && se.Stage != mail.StageHello {
		// bufio hands textproto a cut-off line as a whole one, so the
		// greeting may "succeed" and the next read fail.
		t.Fatalf("SendCode = %v, want a connect or ehlo error", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SendCode read until the deadline: %v", err)
	}
	// What the peer got rid of is what the client read plus socket buffers.
	if n := <-written; n < 0 || n >= offered {
		t.Errorf("the peer wrote %d bytes before the client gave up, want far fewer than %d", n, offered)
	}
}

// TestLongReplyIsCut: whatever a server replies, the operator's log gets one
// line of bounded length.
func TestLongReplyIsCut(t *testing.T) {
	leakcheck.Check(t)
	srv := smtptest.Start(t, smtptest.Options{Hooks: smtptest.Hooks{
		Rcpt: func(int, string) error { return smtptest.Reply(550, "no such user "+strings.Repeat("é", 50_000)) },
	}})
	err := send(t, newSender(t, configFor(srv)), nil)
	checkSendError(t, err, mail.StageRcpt, 550, 1, false, true, nil)
	text := err.Error()
	if len(text) > 2048 || !strings.Contains(text, "no such user") || !utf8.ValidString(text) {
		t.Errorf("error text is %d bytes (valid UTF-8: %v), want the start of the reply in at most 2 KiB", len(text), utf8.ValidString(text))
	}
}

// TestAppPasswordSpaces checks that a Gmail app password pasted as Google
// shows it, four groups of four letters, authenticates however it was set.
func TestAppPasswordSpaces(t *testing.T) {
	leakcheck.Check(t)
	srv := smtptest.Start(t, smtptest.Options{Username: "me@example.org", Password: "abcdefghijklmnop"})
	cfg := configFor(srv)
	cfg.Username, cfg.Password = "me@example.org", "abcd efgh ijkl mnop"
	if err := newSender(t, cfg).Test(t.Context(), testTo); err != nil {
		t.Fatalf("Test with the app password as shown: %v", err)
	}
}
