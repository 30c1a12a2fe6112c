package serve

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	gossh "golang.org/x/crypto/ssh"

	"github.com/otplogin/otplogin/mail"
	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/otp"
	"github.com/otplogin/otplogin/ui"
)

// loginServer is a Server running the real ui over the real otp service,
// mailing codes to an embedded dev mail server.
type loginServer struct {
	*testServer
	dev *devserver.Server
}

func startLoginServer(t *testing.T, mutate func(*Config), before ...func(*Server)) *loginServer {
	t.Helper()
	return startLoginServerWith(t, otp.Config{}, mutate, before...)
}

// startLoginServerWith is startLoginServer with the otp service's own
// configuration (its limits, its clock).
func startLoginServerWith(t *testing.T, otpCfg otp.Config, mutate func(*Config), before ...func(*Server)) *loginServer {
	t.Helper()
	dev, svc := loginService(t, otpCfg)
	options := func(s Session) ui.Options {
		return ui.Options{Service: svc, Client: s.Client, Remote: true, Context: s.Context(), Logger: s.Logger, Now: otpCfg.Now}
	}
	ts := startServer(t, func(c *Config) {
		c.NewModel = func(s Session) tea.Model { return ui.New(options(s)) }
		c.RunLines = func(s Session, in io.Reader, out io.Writer) any {
			return ui.RunAccessible(s.Context(), options(s), ui.LineIO{In: in, Out: out, Echo: true, Notices: s.Notices()})
		}
		if mutate != nil {
			mutate(c)
		}
	}, before...)
	return &loginServer{testServer: ts, dev: dev}
}

// loginService is the real otp service, mailing codes to an embedded dev
// mail server.
func loginService(t *testing.T, cfg otp.Config) (*devserver.Server, *otp.Service) {
	t.Helper()
	dev, err := devserver.Start(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dev.Close() })
	sender, err := mail.New(dev.SenderConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sender.Close() })
	svc, err := otp.New(cfg, otp.NewMemoryStore(), sender)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return dev, svc
}

// code waits for the dev server to receive a message for to and returns its
// code.
func (ls *loginServer) code(t *testing.T, to string) string {
	t.Helper()
	return mailedCode(t, ls.dev, to)
}

// mailedCode waits for dev to receive a message for to and returns its
// code.
func mailedCode(t *testing.T, dev *devserver.Server, to string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTime)
	defer cancel()
	msg, err := dev.WaitFor(ctx, to, time.Time{})
	if err != nil {
		t.Fatalf("no mail for %s: %v", to, err)
	}
	code, err := mail.CodeFromMessage(msg.Raw)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// login logs addr in through c, the whole way, and returns the code and
// what the user saw.
func (ls *loginServer) login(t *testing.T, c *gossh.Client, addr string) (code, screen string) {
	t.Helper()
	sess := openTerm(t, c, 80, 24, map[string]string{"COLORTERM": "truecolor"})
	waitFor(t, sess.out, "Email")
	sess.typeText(t, addr+"\r")
	code = ls.code(t, addr)
	waitFor(t, sess.out, "Check your email") // the code screen, where the code can be typed
	waitFor(t, sess.out, addr)               // in full: the visitor's own address
	// Until the user types it, the code must appear nowhere on screen.
	if out := sess.out.String(); strings.Contains(out, code) {
		t.Errorf("the SSH user was shown the code %q", code)
	}
	sess.typeText(t, code+"\r")
	waitFor(t, sess.out, "Verified")
	sess.typeText(t, "\r") // close the success screen
	if status := sess.wait(t); status != 0 {
		t.Errorf("exit status %d, want 0", status)
	}
	return code, sess.out.String()
}

func TestFullLogin(t *testing.T) {
	ls := startLoginServer(t, nil)
	code, screen := ls.login(t, dial(t, ls.addr), "alice@example.com")
	if strings.Contains(screen, ls.dev.Outbox()) {
		t.Error("the SSH user was shown the dev outbox")
	}
	ls.waitStats(t, "session released", func(s Stats) bool { return s.Sessions == 0 })
	waitFor(t, ls.logs, "session end")
	logs := ls.logs.String()
	for _, want := range []string{"outcome=verified", "addr=a***@example.com"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	// Hex session ids may hold six digits in a row; a logged code would
	// stand apart from them.
	if regexp.MustCompile(`(^|[^0-9a-f])`+code+`($|[^0-9a-f])`).MatchString(logs) || strings.Contains(logs, "alice@") {
		t.Errorf("log shows the code or the full address:\n%s", logs)
	}
}

// TestLeavingExitsOne: a visitor who leaves without verifying ends the
// session with the local app's statuses: 1 after Esc, 130 after Ctrl+C.
func TestLeavingExitsOne(t *testing.T) {
	ls := startLoginServer(t, nil)
	for _, tc := range []struct {
		name, keys string
		status     int
	}{
		{"esc on the email screen", "\x1b", 1},
		{"ctrl+c on the email screen", "\x03", 130},
		{"ctrl+c on the code screen", "bob@example.com\r", 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess := openTerm(t, dial(t, ls.addr), 80, 24, nil)
			waitFor(t, sess.out, "Email")
			sess.typeText(t, tc.keys)
			if strings.HasSuffix(tc.keys, "\r") {
				waitFor(t, sess.out, "Check your email")
				sess.typeText(t, "\x03")
			}
			if status := sess.wait(t); status != tc.status {
				t.Errorf("exit status %d, want %d", status, tc.status)
			}
		})
	}
	waitFor(t, ls.logs, "outcome=cancelled")
	waitFor(t, ls.logs, "outcome=interrupted")
}

// TestLinesOverSSH: a visitor who sets ACCESSIBLE=1 logs in by plain lines,
// typed into the raw PTY and echoed, and leaves with the local app's
// statuses.
func TestLinesOverSSH(t *testing.T) {
	ls := startLoginServer(t, nil)
	const addr = "lines@example.com"
	sess := openTerm(t, dial(t, ls.addr), 80, 24, map[string]string{"ACCESSIBLE": "1"})
	waitFor(t, sess.out, "To leave, type quit.")
	sess.typeText(t, addr+"\r")
	waitFor(t, sess.out, "We sent a code to "+addr+".")
	sess.typeText(t, ls.code(t, addr)+"\r")
	waitFor(t, sess.out, "Verified "+addr+".")
	if status := sess.wait(t); status != 0 {
		t.Errorf("exit status %d, want 0", status)
	}
	if out := sess.out.String(); strings.Contains(out, "\x1b[?1049h") || !strings.Contains(out, "Email: "+addr+"\r\n") {
		t.Errorf("want plain echoed lines and no alternate screen:\n%q", out)
	}
	waitFor(t, ls.logs, "outcome=verified")

	sess = openTerm(t, dial(t, ls.addr), 80, 24, map[string]string{"ACCESSIBLE": "true"})
	waitFor(t, sess.out, "To leave, type quit.")
	sess.typeText(t, "\x03")
	if status := sess.wait(t); status != 130 {
		t.Errorf("Ctrl+C: exit status %d, want 130", status)
	}
}

// TestLinesShutdownNotice: when shutdown starts, each visitor in line mode
// is told once, at once, on a line of their own, below which their prompt
// comes again with what they had typed. One finishes the login within the
// grace, with what they typed before the notice; the other is ended with
// the shutdown line when the grace is over, as a program's visitor is.
func TestLinesShutdownNotice(t *testing.T) {
	const grace = waitTime / 2 // ample for a login to finish in it
	ls := startLoginServer(t, func(c *Config) { c.ShutdownGrace = grace })
	lines := map[string]string{"ACCESSIBLE": "1"}
	const addr = "notice@example.com"
	finisher := openTerm(t, dial(t, ls.addr), 80, 24, lines)
	waitFor(t, finisher.out, "Email: ")
	finisher.typeText(t, addr+"\r")
	code := ls.code(t, addr)
	waitFor(t, finisher.out, "Code: ")
	finisher.typeText(t, code[:2])
	waitFor(t, finisher.out, "Code: "+code[:2])
	stayer := openTerm(t, dial(t, ls.addr), 80, 24, lines)
	waitFor(t, stayer.out, "Email: ")
	stayer.typeText(t, "sta")
	waitFor(t, stayer.out, "Email: sta")

	waitStopped := stopAsync(t, ls.stop)
	const notice = "The server is shutting down: please finish within "
	told := func(s *termSession, prompt string) {
		t.Helper()
		waitForMatch(t, s.out, regexp.MustCompile(regexp.QuoteMeta(prompt)+"\r\n"+notice+`\d+s\.\r\n`+regexp.QuoteMeta(prompt)))
	}
	told(finisher, "Code: "+code[:2])
	told(stayer, "Email: sta")

	finisher.typeText(t, code[2:]+"\r")
	waitFor(t, finisher.out, "Verified "+addr+".")
	if status := finisher.wait(t); status != 0 {
		t.Errorf("finisher: exit status %d, want 0\n%q", status, finisher.out)
	}
	if status := stayer.wait(t); status != 1 {
		t.Errorf("stayer: exit status %d, want 1", status)
	}
	if out := stayer.out.String(); strings.Index(out, "\r\n"+lineShutdown) < strings.Index(out, notice) {
		t.Errorf("stayer was not told the grace is over:\n%q", out)
	}
	for name, s := range map[string]*termSession{"finisher": finisher, "stayer": stayer} {
		if n := strings.Count(s.out.String(), notice); n != 1 {
			t.Errorf("%s was told %d times, want once:\n%q", name, n, s.out)
		}
	}
	waitStopped()
	for _, want := range []string{"outcome=verified", "end=shutdown"} {
		if !strings.Contains(ls.logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, ls.logs)
		}
	}
}

// TestLinesIgnoringNotices: a RunLines that never takes its notices does
// not hold the server up: its session still ends with the shutdown line
// when the grace is over.
func TestLinesIgnoringNotices(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.ShutdownGrace = 300 * time.Millisecond
		c.RunLines = func(s Session, in io.Reader, out io.Writer) any {
			_, _ = io.WriteString(out, "waiting\r\n")
			<-s.Context().Done()
			return nil
		}
	})
	sess := openTerm(t, dial(t, ts.addr), 80, 24, map[string]string{"ACCESSIBLE": "1"})
	waitFor(t, sess.out, "waiting")
	waitStopped := stopAsync(t, ts.stop)
	if status := sess.wait(t); status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	if !strings.Contains(sess.out.String(), lineShutdown) {
		t.Errorf("the visitor was not told:\n%q", sess.out)
	}
	waitStopped()
	waitFor(t, ts.logs, "end=shutdown")
}
