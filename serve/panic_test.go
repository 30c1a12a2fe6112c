package serve

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"
)

// panicModel panics where its session's TEST_PANIC variable says.
type panicModel struct{ at string }

func (m panicModel) Init() tea.Cmd {
	if m.at == "cmd" {
		return func() tea.Msg { panic("test panic in a command") }
	}
	return nil
}

func (m panicModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if _, ok := msg.(tea.KeyPressMsg); ok && m.at == "update" {
		panic("test panic in Update")
	}
	return m, nil
}

func (m panicModel) View() tea.View {
	if m.at == "view" {
		panic("test panic in View")
	}
	return tea.NewView("panic model")
}

func envOf(s ssh.Session, key string) string {
	for _, kv := range s.Environ() {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestPanicEndsOneConnection injects a panic into every place that runs
// for one connection, one after another on the same server. After each, the
// user was told (if the connection got as far as a session), the operator's
// log has one line for it, Stats counts it, nothing of the connection is
// left, and a full login on the same server works.
func TestPanicEndsOneConnection(t *testing.T) {
	programStacks := runReportsStack()
	var panicNow atomic.Bool
	ls := startLoginServer(t, func(c *Config) {
		c.ConnRate = rate.Inf // a dozen connections from one address
		c.Now = func() time.Time {
			if panicNow.Load() {
				panic("test panic in the limiter's clock")
			}
			return time.Now()
		}
		ui := c.NewModel
		c.NewModel = func(s Session) tea.Model {
			switch at := envOf(s, "TEST_PANIC"); at {
			case "":
				return ui(s)
			case "new":
				panic("test panic in NewModel for panicky@example.com")
			default:
				return panicModel{at: at}
			}
		}
	}, func(s *Server) {
		// Seams of the SSH library itself: the callbacks it runs on the
		// goroutines it owns.
		s.ssh.PtyCallback = func(_ ssh.Context, pty ssh.Pty) bool {
			if pty.Term == "panic-term" {
				panic("test panic in the session's request loop")
			}
			return true
		}
		s.ssh.BannerHandler = func(ctx ssh.Context) string {
			if ctx.User() == "panic" {
				panic("test panic in the handshake")
			}
			return ""
		}
		s.ssh.RequestHandlers["otplogin-test-panic"] = func(ssh.Context, *ssh.Server, *gossh.Request) (bool, []byte) {
			panic("test panic in a global request")
		}
		// This package's own goroutine, which nothing from outside reaches
		// with a panic.
		s.hooks.window = func(width, _ int) {
			if width == 33 {
				panic("test panic in watch")
			}
		}
	})
	// The library logs the panics it recovers through slog's default.
	defaultLog := slog.Default()
	slog.SetDefault(slog.New(ls.LibraryLog()))
	t.Cleanup(func() { slog.SetDefault(defaultLog) })

	// session runs a PTY session with TEST_PANIC=at, typing keys once the
	// first frame is out, and checks that it ends with lineError.
	session := func(at, keys string) func(t *testing.T) {
		return func(t *testing.T) {
			sess := openTerm(t, dial(t, ls.addr), 80, 24, map[string]string{"TEST_PANIC": at})
			if keys != "" {
				waitFor(t, sess.out, "panic model")
				sess.typeText(t, keys)
			}
			checkToldUser(t, sess)
		}
	}
	for i, tc := range []struct {
		name, where string // where: the log line's where=, or the SSH library's message
		stack       bool
		trigger     func(t *testing.T)
	}{
		{"NewModel", "where=session", true, session("new", "")},
		{"Update", "where=program", programStacks, session("update", "x")},
		{"View", "where=program", programStacks, session("view", "")},
		{"command", "where=program", programStacks, session("cmd", "")},
		{"watch", "where=watch", true, func(t *testing.T) {
			sess := openTerm(t, dial(t, ls.addr), 80, 24, nil)
			waitFor(t, sess.out, "Email")
			if err := sess.WindowChange(20, 33); err != nil {
				t.Fatal(err)
			}
			checkToldUser(t, sess)
		}},
		{"session request loop", `where="session requests"`, true, func(t *testing.T) {
			sess, err := dial(t, ls.addr).NewSession()
			if err != nil {
				t.Fatal(err)
			}
			stderr, err := sess.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			answered := make(chan error, 1)
			go func() { answered <- sess.RequestPty("panic-term", 24, 80, nil) }()
			select {
			case err := <-answered:
				if err == nil {
					t.Error("pty-req granted although its handler panicked")
				}
			case <-time.After(waitTime):
				t.Fatal("the connection is still open after its request loop panicked")
			}
			if out, _ := io.ReadAll(stderr); !strings.Contains(string(out), lineError) {
				t.Errorf("user was told %q, want %q", out, lineError)
			}
		}},
		{"connection admission", "where=connection", true, func(t *testing.T) {
			panicNow.Store(true)
			defer panicNow.Store(false)
			if c, err := dialErr(ls.addr); err == nil {
				_ = c.Close()
				t.Error("connection served although its admission panicked")
			}
		}},
		{"SSH handshake", libraryPanicPrefix + " serving connection", true, func(t *testing.T) {
			c, err := gossh.Dial("tcp", ls.addr, &gossh.ClientConfig{
				User: "panic", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: waitTime,
			})
			if err == nil {
				_ = c.Close()
				t.Error("handshake completed although it panicked")
			}
		}},
		{"SSH global request", libraryPanicPrefix + " handling requests", true, func(t *testing.T) {
			c := dial(t, ls.addr)
			before := ls.Stats().Panics
			if _, _, err := c.SendRequest("otplogin-test-panic", false, nil); err != nil {
				t.Fatal(err)
			}
			// Nothing tells the client; the connection is its to close.
			ls.waitStats(t, "the panic", func(s Stats) bool { return s.Panics > before })
			_ = c.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Registered first, so run last: once this test's clients have
			// closed their connections, nothing of them is left.
			t.Cleanup(func() {
				ls.waitStats(t, "connections released", func(s Stats) bool { return s.Conns == 0 && s.Sessions == 0 })
			})
			before := strings.Count(ls.logs.String(), tc.where)
			tc.trigger(t)
			ls.waitStats(t, "the panic counted", func(s Stats) bool { return s.Panics == int64(i+1) })
			waitFor(t, ls.logs, tc.where)
			logs := ls.logs.String()
			if n := strings.Count(logs, tc.where) - before; n != 1 {
				t.Errorf("%d log lines with %s, want 1:\n%s", n, tc.where, logs)
			}
			if tc.stack && !strings.Contains(logs[strings.LastIndex(logs, tc.where):], "goroutine") {
				t.Errorf("the panic's log line has no stack:\n%s", logs)
			}
			if strings.Contains(logs, "panicky@") {
				t.Errorf("the log shows an address from a panic unmasked:\n%s", logs)
			}
			// The server goes on serving.
			ls.login(t, dial(t, ls.addr), fmt.Sprintf("after-%d@example.com", i))
		})
	}
	if got := ls.Stats().Panics; got != 9 {
		t.Errorf("Stats.Panics = %d, want 9", got)
	}
	if !strings.Contains(ls.logs.String(), "p***@example.com") {
		t.Error("the NewModel panic's address is not in the log, masked")
	}
}

// checkToldUser waits for a session to end and checks that the user was
// told lineError and shown nothing of the panic.
func checkToldUser(t *testing.T, sess *termSession) {
	t.Helper()
	if status := sess.wait(t); status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	out := sess.out.String()
	if !strings.Contains(out, lineError) {
		t.Errorf("user was not told %q: %q", lineError, out)
	}
	for _, leak := range []string{"test panic", "goroutine", ".go:"} {
		if strings.Contains(out, leak) {
			t.Errorf("user was shown %q: %q", leak, out)
		}
	}
}

func TestPanicStack(t *testing.T) {
	if got := panicStack(errors.New("plain")); got != nil {
		t.Errorf("panicStack(plain error) = %q", got)
	}
	err := fmt.Errorf("run: %w", stackError{errors.New("boom"), []byte("goroutine 1 [running]:")})
	if got := string(panicStack(err)); got != "goroutine 1 [running]:" {
		t.Errorf("panicStack(wrapped) = %q", got)
	}
}

type stackError struct {
	error
	stack []byte
}

func (e stackError) Stack() []byte { return e.stack }

func TestMaskAddresses(t *testing.T) {
	for in, want := range map[string]string{
		"no address here":                           "no address here",
		"bad input alice@example.com, stop":         "bad input a***@example.com, stop",
		`"bob@x.org" and <carol@y.net>`:             `"b***@x.org" and <c***@y.net>`,
		"index out of range [5] with length 3":      "index out of range [5] with length 3",
		"user@host:22 said no":                      "u***@host:22 said no",
		"two: a@b.c d@e.f":                          "two: a***@b.c d***@e.f",
		"@leading and trailing@":                    "@leading and trailing@",
		"ünï@example.com":                           "***@example.com",
		strings.Repeat("x", 3) + "@" + "example.io": "x***@example.io",
	} {
		if got := maskAddresses(in); got != want {
			t.Errorf("maskAddresses(%q) = %q, want %q", in, got, want)
		}
	}
}

// runReportsStack reports whether this bubbletea's Run returns a panic's
// stack with its error, as the patched copy does (tea.PanicError); the
// released one only prints it to stderr, so the log line has no stack.
func runReportsStack() bool {
	_, err := tea.NewProgram(panicModel{at: "cmd"}, tea.WithInput(nil), tea.WithOutput(io.Discard),
		tea.WithoutSignals(), tea.WithWindowSize(10, 10)).Run()
	return panicStack(err) != nil
}
