package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/otplogin/otplogin/internal/metrics/metricstest"
	"github.com/otplogin/otplogin/internal/redistest"
	"github.com/otplogin/otplogin/internal/smtptest"
	"github.com/otplogin/otplogin/mail"
)

// These tests run serve in this process, as the binary would (Run), with
// its operator endpoint, and log in through OpenSSH under tmux.

// inProcessServe is a serve started by startServeRun.
type inProcessServe struct {
	sshPort    string
	metricsURL string // http://127.0.0.1:port, "" without --metrics-addr
	logs       *syncBuffer
}

var (
	listeningRe = regexp.MustCompile(`msg=listening listen=\S+:(\d+)`)
	operatorRe  = regexp.MustCompile(`msg="operator endpoint" listen=(\S+)`)
)

// startServeRun runs serve with args (and a host key, an outbox and a
// free port of its own) and environment, in logfmt, until the test ends,
// when it must stop cleanly on SIGTERM.
func startServeRun(t *testing.T, environ map[string]string, args ...string) *inProcessServe {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancelCause(context.Background())
	s := &inProcessServe{logs: &syncBuffer{}}
	codec := make(chan int, 1)
	go func() {
		codec <- Run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "logfmt",
			"--outbox", filepath.Join(dir, "outbox"), "--host-key", filepath.Join(dir, "host_key")}, args...),
			IO{io.Discard, s.logs, env(environ)})
	}()
	t.Cleanup(func() {
		cancel(signalled{syscall.SIGTERM})
		select {
		case code := <-codec:
			if code != ExitTerminated {
				t.Errorf("serve exited %d, want %d; log:\n%s", code, ExitTerminated, s.logs)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		logs := s.logs.String()
		if m := listeningRe.FindStringSubmatch(logs); m != nil {
			s.sshPort = m[1]
			if m := operatorRe.FindStringSubmatch(logs); m != nil {
				s.metricsURL = "http://" + m[1]
			}
			return s
		}
		select {
		case code := <-codec:
			t.Fatalf("serve exited %d:\n%s", code, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches url and returns its status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// eventually polls until ok holds; the bound only keeps a broken build
// from hanging the suite.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// relay is a real SMTP server that refuses one address for good, as the
// code's relay for serve.
func relay(t *testing.T, refuse string) (*smtptest.Server, []string) {
	t.Helper()
	srv := smtptest.Start(t, smtptest.Options{Hooks: smtptest.Hooks{
		Rcpt: func(_ int, to string) error {
			if to == refuse {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
			}
			return nil
		},
	}})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, []string{"--smtp-url", "smtp://user:secret@" + srv.Addr(), "--smtp-ca-file", ca, "--from", "login@example.org"}
}

// codeFrom is the code of the newest message srv got for to.
func codeFrom(t *testing.T, srv *smtptest.Server, to string) string {
	t.Helper()
	var raw []byte
	eventually(t, "a message to "+to, func() bool {
		for _, m := range srv.Messages() {
			if m.To[0] == to {
				raw = m.Data
			}
		}
		return raw != nil
	})
	code, err := mail.CodeFromMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// wrongCode is a code that is not code.
func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// TestMetricsAfterLogins logs in over SSH for real (a wrong code then the
// right one; an address the relay refuses; one more code than the client
// may have) and turns one session away, then checks that every counter and
// histogram moved by exactly what those did, as Prometheus's parser reads
// /metrics.
func TestMetricsAfterLogins(t *testing.T) {
	needTool(t, "ssh")
	needTool(t, "tmux")
	srv, smtpArgs := relay(t, "carol@reject.example")
	s := startServeRun(t, nil, append(smtpArgs, "--metrics-addr", "127.0.0.1:0", "--client-codes", "2")...)
	if s.metricsURL == "" {
		t.Fatalf("no operator endpoint in the log:\n%s", s.logs)
	}
	before := metricstest.Scrape(t, s.metricsURL+"/metrics")

	// Alice: a wrong code, then the right one.
	a := startTmux(t, 80, 24, nil, sshCommand(s.sshPort), false)
	a.waitScreen("Email")
	a.typeText("alice@example.com")
	a.press("Enter")
	a.waitScreen("We sent a code")
	code := codeFrom(t, srv, "alice@example.com")
	a.typeText(wrongCode(code))
	a.press("Enter")
	a.waitScreen("4 attempts left")
	a.typeText(code)
	a.press("Enter")
	a.waitScreen("Verified")
	a.press("Enter")

	// Carol: the relay refuses her address.
	c := startTmux(t, 80, 24, nil, sshCommand(s.sshPort), false)
	c.waitScreen("Email")
	c.typeText("carol@reject.example")
	c.press("Enter")
	c.waitScreen("We could not send to that address")
	c.press("Escape")

	// Dave: this client's third code in the hour, over --client-codes.
	d := startTmux(t, 80, 24, nil, sshCommand(s.sshPort), false)
	d.waitScreen("Email")
	d.typeText("dave@example.com")
	d.press("Enter")
	d.waitScreen("Too many codes from this connection")
	d.press("Escape")

	// A session without a terminal is turned away.
	noPTY := exec.Command("ssh", append(strings.Fields(strings.TrimPrefix(sshCommand(s.sshPort), "ssh ")), "-T")...)
	if out, err := noPTY.CombinedOutput(); err == nil || !strings.Contains(string(out), "interactive terminal") {
		t.Fatalf("ssh -T: %v, %q; want the no-terminal refusal", err, out)
	}

	var after metricstest.Families
	eventually(t, "three sessions ended", func() bool {
		after = metricstest.Scrape(t, s.metricsURL+"/metrics")
		return after.Value("otplogin_sessions_ended_total")-before.Value("otplogin_sessions_ended_total") >= 3
	})
	metricstest.CheckDeltas(t, before, after, []metricstest.Moved{
		{Name: "otplogin_sessions_started_total", Want: 3},
		{Name: "otplogin_sessions_ended_total", Want: 3},
		{Name: "otplogin_sessions_ended_total", Labels: []string{"outcome", "verified"}, Want: 1},
		{Name: "otplogin_sessions_open", Want: 0},
		{Name: "otplogin_ssh_refusals_total", Labels: []string{"reason", "no_pty"}, Want: 1},
		{Name: "otplogin_ssh_refusals_total", Want: 1},
		{Name: "otplogin_code_requests_total", Labels: []string{"result", "sent"}, Want: 1},
		{Name: "otplogin_code_requests_total", Labels: []string{"result", "delivery_failed"}, Want: 1},
		{Name: "otplogin_code_requests_total", Labels: []string{"result", "limited"}, Want: 1},
		{Name: "otplogin_code_requests_total", Want: 3},
		{Name: "otplogin_limit_refusals_total", Labels: []string{"call", "request", "limit", "client"}, Want: 1},
		{Name: "otplogin_limit_refusals_total", Want: 1},
		{Name: "otplogin_verifications_total", Labels: []string{"result", "wrong_code"}, Want: 1},
		{Name: "otplogin_verifications_total", Labels: []string{"result", "verified"}, Want: 1},
		{Name: "otplogin_verifications_total", Want: 2},
		{Name: "otplogin_mail_failures_total", Labels: []string{"stage", "rcpt"}, Want: 1},
		{Name: "otplogin_mail_failures_total", Want: 1},
		{Name: "otplogin_panics_recovered_total", Want: 0},
	}, []metricstest.Observed{
		{Name: "otplogin_mail_send_duration_seconds", Labels: []string{"result", "sent"}, Want: 1},
		{Name: "otplogin_mail_send_duration_seconds", Labels: []string{"result", "failed"}, Want: 1},
		// Dave's request reaches the store, which refuses it.
		{Name: "otplogin_store_duration_seconds", Labels: []string{"op", "issue"}, Want: 3},
		{Name: "otplogin_store_duration_seconds", Labels: []string{"op", "attempt"}, Want: 2},
		{Name: "otplogin_store_duration_seconds", Labels: []string{"op", "consume"}, Want: 1},
		{Name: "otplogin_store_duration_seconds", Labels: []string{"op", "discard"}, Want: 1},
	})
	for _, name := range []string{"otplogin_mail_send_duration_seconds", "otplogin_store_duration_seconds"} {
		if after.Sum(name) <= before.Sum(name) {
			t.Errorf("%s: the sum of durations did not grow", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if after.Value(name) <= 0 {
			t.Errorf("%s is not collected", name)
		}
	}
	// The refusal is in the log, at info, with the masked address, the
	// client and the limit.
	if want := `level=info msg="code request refused" addr=d***@example.com client=127.0.0.1 limit=client`; !strings.Contains(s.logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, s.logs)
	}
}

// TestReadyFollowsRedis: /readyz (and otplogin health --ready) says not
// ready while Redis is frozen or gone, and ready again when it is back,
// while /healthz stays healthy throughout.
func TestReadyFollowsRedis(t *testing.T) {
	rdb := redistest.Start(t)
	s := startServeRun(t, map[string]string{"OTPLOGIN_SECRET": strings.Repeat("ab", 32)},
		"--redis-url", rdb.URL(), "--metrics-addr", "127.0.0.1:0")
	metricsAddr := strings.TrimPrefix(s.metricsURL, "http://")
	health := func(args ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), append([]string{"health", "--metrics-addr", metricsAddr}, args...), IO{&stdout, &stderr, env(nil)})
		return code, stdout.String() + stderr.String()
	}
	ready := func(want int) func() bool {
		return func() bool { code, _ := get(t, s.metricsURL+"/readyz"); return code == want }
	}
	if code, body := get(t, s.metricsURL+"/readyz"); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz with Redis up: %d %q", code, body)
	}
	if code, out := health("--ready"); code != ExitOK || out != "ready\n" {
		t.Fatalf("health --ready with Redis up: %d %q", code, out)
	}

	rdb.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			rdb.Thaw()
		}
	}()
	if code, body := get(t, s.metricsURL+"/readyz"); code != http.StatusServiceUnavailable || body != "not ready: store\n" {
		t.Errorf("/readyz with Redis frozen: %d %q", code, body)
	}
	if code, out := health("--ready"); code != ExitFailed || !strings.HasPrefix(out, "otplogin: health: ") || !strings.Contains(out, "503") {
		t.Errorf("health --ready with Redis frozen: %d %q", code, out)
	}
	if code, out := health(); code != ExitOK || out != "ok\n" {
		t.Errorf("health with Redis frozen: %d %q; the process still serves", code, out)
	}
	rdb.Thaw()
	thawed = true
	eventually(t, "ready after thaw", ready(http.StatusOK))

	rdb.Kill()
	eventually(t, "not ready with Redis gone", ready(http.StatusServiceUnavailable))
	rdb.Restart()
	eventually(t, "ready after Redis restarted", ready(http.StatusOK))

	logs := s.logs.String()
	if !strings.Contains(logs, `level=warn msg="not ready" check=store`) || !strings.Contains(logs, `msg="ready again" check=store`) {
		t.Errorf("the log does not tell the changes of readiness:\n%s", logs)
	}
}

// TestBrandedLogin: with an application name, the screens' title and the
// code email (subject and both parts) carry it.
func TestBrandedLogin(t *testing.T) {
	outbox := filepath.Join(t.TempDir(), "outbox")
	const addr = "erin@example.com"
	s := startTmux(t, 80, 24, []string{"OTPLOGIN_OUTBOX=" + outbox, "OTPLOGIN_APP_NAME='Acme Login'"}, binary, true)
	s.waitScreen("Acme Login · Prove you own an email address")
	s.typeText(addr)
	s.press("Enter")
	s.waitScreen("Acme Login · Check your email")

	raw := messageFor(t, outbox, addr)
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("Subject"); got != "Your Acme Login verification code" {
		t.Errorf("subject %q", got)
	}
	if n := bytes.Count(raw, []byte("Your Acme Login verification code is:")); n != 2 {
		t.Errorf("the name is in %d parts of the body, want both:\n%s", n, raw)
	}
	code, err := mail.CodeFromMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	s.typeText(code)
	s.press("Enter")
	if status, stdout := s.waitExit(); status != "0" || stdout != addr+"\n" {
		t.Fatalf("status %s, stdout %q", status, stdout)
	}
}

// TestBrokenTemplateRefused: the real binary refuses a template folder
// whose HTML does not parse, naming the file and the line, before it
// starts anything.
func TestBrokenTemplateRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "code.txt"), []byte("Code:\n\n{{.Code}}\n\nFor {{.ValidFor}}.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	html := "<html>\n<body>\n<p>{{.Code}}</p>\n<p>{{if .ValidFor}}{{.ValidFor}}</p>\n</body>\n"
	if err := os.WriteFile(filepath.Join(dir, "code.html"), []byte(html), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--template-dir", dir}, {"serve", "--template-dir", dir}} {
		r := runBinary(t, nil, args...)
		assertOneLine(t, r, fmt.Sprintf("otplogin: --template-dir (OTPLOGIN_TEMPLATE_DIR): %s/code.html:6: unexpected EOF", dir))
	}
}
