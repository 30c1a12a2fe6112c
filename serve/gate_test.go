package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otplogin/otplogin/otp"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"

	"github.com/otplogin/otplogin/mail/devserver"
	"github.com/otplogin/otplogin/ui"
)

// gateServer is someone else's wish server with Gate in front of its
// handler, the real ui and otp service behind it, and codes mailed to a
// dev mail server.
type gateServer struct {
	addr    string
	dev     *devserver.Server
	logs    *safeBuffer
	mu      sync.Mutex
	reached []string // the addresses the app was reached with
}

// reachedApp returns who reached the app so far.
func (gs *gateServer) reachedApp() []string {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return append([]string(nil), gs.reached...)
}

// startGateServer runs wish.NewServer with Gate (configured by mutate) in
// front of an app that greets the verified address, reads one byte and
// says which.
func startGateServer(t *testing.T, mutate func(*GateConfig), opts ...ssh.Option) *gateServer {
	t.Helper()
	dev, svc := loginService(t, otp.Config{})
	gs := &gateServer{dev: dev, logs: &safeBuffer{}}
	options := func(s Session) ui.Options {
		return ui.Options{Service: svc, Client: s.Client, Remote: true, Handoff: true, Context: s.Context(), Logger: s.Logger}
	}
	cfg := GateConfig{
		NewModel: func(s Session) tea.Model {
			switch envOf(s, "TEST_PANIC") {
			case "new":
				panic("test panic in NewModel")
			case "":
				return ui.New(options(s))
			default:
				return panicModel{at: envOf(s, "TEST_PANIC")}
			}
		},
		RunLines: func(s Session, in io.Reader, out io.Writer) any {
			return ui.RunAccessible(s.Context(), options(s), ui.LineIO{In: in, Out: out, Echo: true, Notices: s.Notices()})
		},
		Logger: log.NewWithOptions(gs.logs, log.Options{Level: log.DebugLevel}),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	gate, err := Gate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	app := func(sess ssh.Session) {
		addr, ok := VerifiedAddress(sess.Context())
		gs.mu.Lock()
		gs.reached = append(gs.reached, fmt.Sprintf("%s %v", addr, ok))
		gs.mu.Unlock()
		pty, _, _ := sess.Pty()
		_, _ = fmt.Fprintf(sess, "welcome %s %dx%d\r\n", addr, pty.Window.Width, pty.Window.Height)
		b := make([]byte, 1)
		n, err := sess.Read(b)
		_, _ = fmt.Fprintf(sess, "got %q %v\r\n", b[:n], err)
		_ = sess.Exit(0)
	}
	srv, err := wish.NewServer(append([]ssh.Option{
		wish.WithHostKeyPath(filepath.Join(t.TempDir(), "host_key")),
		wish.WithIdleTimeout(waitTime),
		wish.WithMiddleware(func(ssh.Handler) ssh.Handler { return app }, gate),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	gs.addr = l.Addr().String()
	return gs
}

// TestGateLetsOnlyVerifiedThrough drives visitors of someone else's wish
// server over a real SSH client, through every way a login ends: only
// the one who verified reaches the app, with the address, and the app
// reads the first byte typed after that.
func TestGateLetsOnlyVerifiedThrough(t *testing.T) {
	gs := startGateServer(t, func(c *GateConfig) {
		c.MaxInputBytes = 4 << 10
		c.InputAllowance = 4 << 10
	})
	for _, tc := range []struct {
		name   string
		env    map[string]string
		visit  func(t *testing.T, sess *termSession) // up to the end of the login
		status int
		line   string // what the visitor is told at the end
	}{
		{"verified", nil, func(t *testing.T, sess *termSession) {
			waitFor(t, sess.out, "Email")
			// The app gets the window as it is now, not as it was.
			if err := sess.WindowChange(30, 100); err != nil {
				t.Fatal(err)
			}
			sess.typeText(t, "carol@example.com\r")
			code := mailedCode(t, gs.dev, "carol@example.com")
			waitFor(t, sess.out, "Check your email")
			sess.typeText(t, code+"\r")
			waitFor(t, sess.out, "welcome carol@example.com 100x30")
			sess.typeText(t, "x")
			waitFor(t, sess.out, `got "x" <nil>`)
		}, 0, "✓ Verified carol@example.com"},
		{"verified in line mode", map[string]string{"ACCESSIBLE": "1"}, func(t *testing.T, sess *termSession) {
			waitFor(t, sess.out, "To leave, type quit.")
			if err := sess.WindowChange(20, 60); err != nil {
				t.Fatal(err)
			}
			sess.typeText(t, "dave@example.com\r")
			code := mailedCode(t, gs.dev, "dave@example.com")
			waitFor(t, sess.out, "Code: ")
			sess.typeText(t, code+"\r")
			waitFor(t, sess.out, "welcome dave@example.com 60x20")
			sess.typeText(t, "y")
			waitFor(t, sess.out, `got "y" <nil>`)
		}, 0, "Verified dave@example.com."},
		{"esc", nil, func(t *testing.T, sess *termSession) {
			waitFor(t, sess.out, "Email")
			sess.typeText(t, "\x1b")
		}, 1, ""},
		{"ctrl+c on the code screen", nil, func(t *testing.T, sess *termSession) {
			waitFor(t, sess.out, "Email")
			sess.typeText(t, "erin@example.com\r")
			waitFor(t, sess.out, "Check your email")
			sess.typeText(t, "\x03")
		}, 130, ""},
		{"wrong codes, then leaving", nil, func(t *testing.T, sess *termSession) {
			waitFor(t, sess.out, "Email")
			sess.typeText(t, "frank@example.com\r")
			code := mailedCode(t, gs.dev, "frank@example.com")
			waitFor(t, sess.out, "Check your email")
			wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1_000_000)
			failed := strings.Count(gs.logs.String(), "verify failed")
			for i := range 5 {
				// The renderer redraws only the cells that change, so
				// the operator's log is where each answer shows whole.
				sess.typeText(t, wrong+"\r")
				waitCount(t, gs.logs, "verify failed", failed+i+1)
			}
			waitFor(t, gs.logs, "result=too-many-attempts")
			sess.typeText(t, code+"\r") // dead now
			sess.typeText(t, "\x03")
		}, 130, ""},
		{"quit in line mode", map[string]string{"ACCESSIBLE": "1"}, func(t *testing.T, sess *termSession) {
			waitFor(t, sess.out, "To leave, type quit.")
			sess.typeText(t, "quit\r")
		}, 1, "Cancelled"},
		{"panic in NewModel", map[string]string{"TEST_PANIC": "new"}, func(*testing.T, *termSession) {}, 1, lineError},
		{"panic in Update", map[string]string{"TEST_PANIC": "update"}, func(t *testing.T, sess *termSession) {
			waitFor(t, sess.out, "panic model")
			sess.typeText(t, "k")
		}, 1, lineError},
		{"too much input", nil, func(t *testing.T, sess *termSession) {
			waitFor(t, sess.out, "Email")
			sess.typeText(t, strings.Repeat("a", 8<<10))
		}, 1, lineInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(gs.reachedApp())
			sess := openTerm(t, dial(t, gs.addr), 80, 24, tc.env)
			tc.visit(t, sess)
			if status := sess.wait(t); status != tc.status {
				t.Errorf("exit status %d, want %d; screen:\n%q", status, tc.status, sess.out)
			}
			if !strings.Contains(sess.out.String(), tc.line) {
				t.Errorf("visitor was not told %q:\n%q", tc.line, sess.out)
			}
			reached := gs.reachedApp()[before:]
			if tc.status == 0 {
				if len(reached) != 1 || !strings.HasSuffix(reached[0], "@example.com true") {
					t.Errorf("app reached by %q, want the verified address", reached)
				}
				return
			}
			if len(reached) != 0 {
				t.Errorf("an unverified visitor reached the app: %q", reached)
			}
		})
	}
	waitFor(t, gs.logs, "login end")
	if logs := gs.logs.String(); strings.Contains(logs, "carol@") || !strings.Contains(logs, "c***@example.com") {
		t.Errorf("log does not mask the address:\n%s", logs)
	}
}

// waitCount polls until b contains want n times.
func waitCount(t *testing.T, b *safeBuffer, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for strings.Count(b.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q %d times in:\n%s", want, n, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func atoi(s string) int {
	n := 0
	for _, r := range s {
		n = 10*n + int(r-'0')
	}
	return n
}

// TestGateDisconnectAndNoPTY: a visitor who disconnects mid-login, and
// one without a terminal, never reach the app.
func TestGateDisconnectAndNoPTY(t *testing.T) {
	gs := startGateServer(t, nil)

	c := dial(t, gs.addr)
	sess := openTerm(t, c, 80, 24, nil)
	waitFor(t, sess.out, "Email")
	sess.typeText(t, "gina@example.com\r")
	waitFor(t, sess.out, "Check your email")
	_ = c.Close()
	waitFor(t, gs.logs, "end=disconnected")

	plain, err := dial(t, gs.addr).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := plain.CombinedOutput("")
	var exit interface{ ExitStatus() int }
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 || !strings.Contains(string(out), lineNoPTY) {
		t.Errorf("no PTY: %v, %q", err, out)
	}
	if reached := gs.reachedApp(); len(reached) != 0 {
		t.Errorf("app reached by %q", reached)
	}
}

// TestGateTimeLimit: a login that takes longer than LoginTimeout ends with
// a line saying why, and never reaches the app.
func TestGateTimeLimit(t *testing.T) {
	gs := startGateServer(t, func(c *GateConfig) { c.LoginTimeout = 300 * time.Millisecond })
	sess := openTerm(t, dial(t, gs.addr), 80, 24, nil)
	if status := sess.wait(t); status != 1 || !strings.Contains(sess.out.String(), lineTimeLimit) {
		t.Errorf("exit status %d, screen %q", status, sess.out)
	}
	if reached := gs.reachedApp(); len(reached) != 0 {
		t.Errorf("app reached by %q", reached)
	}
}

// TestGateSessionCaps: the caps count logins in progress from a client;
// a session that went on to the app holds no slot.
func TestGateSessionCaps(t *testing.T) {
	gs := startGateServer(t, func(c *GateConfig) { c.MaxSessionsPerClient = 1 })
	first := openTerm(t, dial(t, gs.addr), 80, 24, nil)
	waitFor(t, first.out, "Email")

	second := openTerm(t, dial(t, gs.addr), 80, 24, nil)
	if status := second.wait(t); status != 1 || !strings.Contains(second.out.String(), lineClientSessions) {
		t.Errorf("second login: exit %d, screen %q", status, second.out)
	}

	first.typeText(t, "hana@example.com\r")
	code := mailedCode(t, gs.dev, "hana@example.com")
	waitFor(t, first.out, "Check your email")
	first.typeText(t, code+"\r")
	waitFor(t, first.out, "welcome hana@example.com") // in the app, which waits for a byte

	third := openTerm(t, dial(t, gs.addr), 80, 24, nil)
	waitFor(t, third.out, "Email")
	third.typeText(t, "\x1b")
	if status := third.wait(t); status != 1 {
		t.Errorf("third login: exit %d", status)
	}
	first.typeText(t, "z")
	if status := first.wait(t); status != 0 {
		t.Errorf("first session: exit %d", status)
	}
}

// TestGateFirstByteAfterLogin repeats a login a few times and checks each
// time that the app reads the first byte the visitor types once it is
// there: the read the login's program left waiting gives it up. Run by
// .ci/released-deps against the released bubbletea too.
func TestGateFirstByteAfterLogin(t *testing.T) {
	gs := startGateServer(t, nil)
	for i := range 5 {
		addr := fmt.Sprintf("byte%d@example.com", i)
		sess := openTerm(t, dial(t, gs.addr), 80, 24, nil)
		waitFor(t, sess.out, "Email")
		sess.typeText(t, addr+"\r")
		code := mailedCode(t, gs.dev, addr)
		waitFor(t, sess.out, "Check your email")
		sess.typeText(t, code+"\r")
		waitFor(t, sess.out, "welcome "+addr)
		sess.typeText(t, "!")
		waitFor(t, sess.out, `got "!" <nil>`)
		if status := sess.wait(t); status != 0 {
			t.Errorf("exit status %d", status)
		}
	}
}

// TestGateNeedsEmulatedPTY: behind ssh.AllocatePty the SSH library reads
// the session itself; the gate refuses rather than share the input, and
// says why in the operator's log.
func TestGateNeedsEmulatedPTY(t *testing.T) {
	gs := startGateServer(t, nil, ssh.AllocatePty())
	sess := openTerm(t, dial(t, gs.addr), 80, 24, nil)
	if status := sess.wait(t); status != 1 || !strings.Contains(sess.out.String(), lineError) {
		t.Errorf("exit %d, screen %q", status, sess.out)
	}
	waitFor(t, gs.logs, "ssh.AllocatePty")
	if reached := gs.reachedApp(); len(reached) != 0 {
		t.Errorf("app reached by %q", reached)
	}
}

func TestVerifiedAddressElsewhere(t *testing.T) {
	if addr, ok := VerifiedAddress(context.Background()); ok || addr != "" {
		t.Errorf("VerifiedAddress outside the gate = %q, %v", addr, ok)
	}
}

func TestGateConfigChecked(t *testing.T) {
	for _, cfg := range []GateConfig{
		{},
		{NewModel: startServerModel, MaxSessions: -1},
		{NewModel: startServerModel, MaxInputBytes: -1},
		{NewModel: startServerModel, LoginTimeout: -time.Second},
		{NewModel: startServerModel, FPS: 500},
	} {
		if _, err := Gate(cfg); err == nil {
			t.Errorf("Gate(%+v) took it", cfg)
		}
	}
}
